"""Phone videos: pixels stored sideways plus a display rotation (and mirroring) in the container.

Every frame reaches the model, the JSONL, the window and the recording upright, as a player
shows it. The test videos are written by ``conftest.write_oriented_video``, whose convention
is checked here against OpenCV's own autorotation (an independent player) and, when an ffmpeg
binary is at hand, against ffmpeg's ``-autorotate`` for all eight orientations.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from fractions import Fraction
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import av
import cv2
import numpy as np
import pytest
from conftest import (
    invoke_cli,
    needs_bundled_model,
    write_oriented_video,
)

from livesegment import shapes
from livesegment.video.media import MediaReader
from livesegment.video.orientation import Orientation
from livesegment.video.sources import open_source, parse_source

# Upright quadrant colours, BGR: top-left red, top-right green, bottom-left blue, bottom-right
# white. Four different colours tell all eight orientations apart.
QUADRANT_BGR = np.array([(0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 255)], np.int32)
UPRIGHT_QUADRANTS = (0, 1, 2, 3)
ORIENTATIONS = [
    (rotation, hflip, vflip)
    for rotation in (0, 90, 180, 270)
    for hflip in (False, True)
    for vflip in (False, True)
]


def quadrant_picture(size_wh: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 BGR: the four quadrant colours, with a yellow tag in the top-left."""
    width, height = size_wh
    bgr = np.empty((height, width, 3), np.uint8)
    bgr[: height // 2, : width // 2] = QUADRANT_BGR[0]
    bgr[: height // 2, width // 2 :] = QUADRANT_BGR[1]
    bgr[height // 2 :, : width // 2] = QUADRANT_BGR[2]
    bgr[height // 2 :, width // 2 :] = QUADRANT_BGR[3]
    bgr[4:12, 4:20] = (0, 255, 255)
    return bgr


def quadrants_of(bgr: np.ndarray) -> tuple[int, ...]:
    """Which quadrant colour is in each quadrant (TL, TR, BL, BR), read below the HUD strip at
    the top and above the no-detection banner at the bottom of an annotated picture."""
    height, width = bgr.shape[:2]
    found = []
    for y in (0.4 * height, 0.75 * height):
        for x in (0.25 * width, 0.75 * width):
            patch = bgr[round(y) - 3 : round(y) + 4, round(x) - 3 : round(x) + 4]
            median = np.median(patch.reshape(-1, 3), axis=0)
            found.append(int(np.abs(QUADRANT_BGR - median).sum(axis=1).argmin()))
    return tuple(found)


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_jsonl_upright(path, upright_wh: tuple[int, int], frames: int) -> None:
    """Every line has the upright size; masks and boxes are in upright pixels."""
    *lines, summary = _jsonl(path)
    assert summary["summary"]["frames_processed"] == frames
    assert len(lines) == frames
    width, height = upright_wh
    detections = 0
    for line in lines:
        assert (line["width"], line["height"]) == (width, height), line
        for det in line["detections"]:
            detections += 1
            assert det["mask"]["size"] == [height, width]
            x1, y1, x2, y2 = det["box"]
            assert 0 <= x1 <= x2 <= width and 0 <= y1 <= y2 <= height, det["box"]
    assert detections, "threshold 0 keeps detections whose masks and boxes can be checked"


def assert_plays_upright(path, upright_wh: tuple[int, int], frames: int | None = None) -> None:
    """The recording holds upright pixels and no display matrix, so any player (PyAV with
    no rotation applied, OpenCV with its autorotation) shows the quadrants upright."""
    width, height = upright_wh
    padded = (width + width % 2, height + height % 2)
    count = 0
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            assert frame.side_data.get("DISPLAYMATRIX") is None, "no rotation in the output"
            assert (frame.width, frame.height) == padded
            assert (
                quadrants_of(frame.to_ndarray(format="bgr24")[:height, :width]) == UPRIGHT_QUADRANTS
            )
            count += 1
    if frames is not None:
        assert count == frames
    capture = cv2.VideoCapture(str(path))
    try:
        ok, bgr = capture.read()
        assert ok and bgr.shape[:2] == (padded[1], padded[0])
        assert quadrants_of(bgr[:height, :width]) == UPRIGHT_QUADRANTS
    finally:
        capture.release()


def _run_args(source, tiny_model, out, dets, *extra):
    return (
        "run",
        str(source),
        "--model",
        str(tiny_model.with_suffix(".h5")),
        "--no-display",
        "--threshold",
        "0",
        "--no-masks",
        "--no-boxes",
        "--no-labels",
        "--output",
        str(out),
        "--json",
        str(dets),
        *extra,
    )


def test_display_matrix_gives_the_pixel_transform():
    # Counter-clockwise 90° on screen (what PyAV's set_display_rotation(90) writes): stored
    # top-left ends bottom-left.
    ccw = Orientation.from_display_matrix([0, -65536, 0, 65536, 0, 0, 0, 0, 1 << 30])
    stored = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert ccw.apply(stored).tolist() == np.rot90(stored, 1).tolist()
    assert ccw.size_wh((3, 2)) == (2, 3)
    assert ccw.describe() == "rotated 90° counter-clockwise"
    mirrored = Orientation.from_display_matrix([-65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30])
    assert mirrored.apply(stored).tolist() == stored[:, ::-1].tolist()
    assert mirrored.describe() == "mirrored"
    # A scaled matrix is the same orientation; an empty one is upright.
    assert Orientation.from_display_matrix([0, -2 << 16, 0, 3 << 16, 0, 0, 0, 0, 1]) == ccw
    assert Orientation.from_display_matrix([0] * 9).is_identity
    assert Orientation.from_side_data(None).is_identity


def test_off_right_angle_snaps_to_the_nearest_with_a_warning(caplog):
    # 80° clockwise on screen: shown as 90° clockwise, and said so.
    radians = np.radians(80)
    matrix = [
        round(np.cos(radians) * 65536),
        round(np.sin(radians) * 65536),
        0,
        round(-np.sin(radians) * 65536),
        round(np.cos(radians) * 65536),
        0,
        0,
        0,
        1 << 30,
    ]
    with caplog.at_level("WARNING"):
        orientation = Orientation.from_display_matrix(matrix)
    assert orientation.describe() == "rotated 90° clockwise"
    assert "not a multiple of 90" in caplog.text


@pytest.mark.parametrize(("rotation", "hflip", "vflip"), ORIENTATIONS)
def test_every_orientation_is_decoded_upright(tmp_path, rotation, hflip, vflip):
    upright = quadrant_picture((96, 64))
    source = write_oriented_video(
        tmp_path / "o.mkv", [upright] * 2, rotation, hflip, vflip, codec="ffv1", pix_fmt="bgr0"
    )
    opened = open_source(str(source))
    try:
        assert opened.info.size_wh == (96, 64)
        for _ in range(2):
            _, _, bgr = opened.read()
            assert np.array_equal(bgr, upright), "lossless: exactly the upright picture"
            assert bgr.flags.c_contiguous
        assert opened.read() is None
    finally:
        opened.release()
    turned = rotation % 180 == 90
    with av.open(str(source)) as container:
        stored = next(container.decode(video=0))
        assert (stored.width, stored.height) == ((64, 96) if turned else (96, 64))


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_test_videos_play_upright_in_opencv(tmp_path, rotation):
    """The writer's convention, checked by another player: OpenCV's FFmpeg backend applies
    right-angle display rotations itself."""
    source = write_oriented_video(tmp_path / "o.mp4", [quadrant_picture((160, 96))] * 2, rotation)
    capture = cv2.VideoCapture(str(source))
    try:
        ok, bgr = capture.read()
    finally:
        capture.release()
    assert ok and bgr.shape == (96, 160, 3)
    assert quadrants_of(bgr) == UPRIGHT_QUADRANTS


def _ffmpeg() -> str | None:
    if found := shutil.which("ffmpeg"):
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    return imageio_ffmpeg.get_ffmpeg_exe()


@pytest.mark.parametrize(("rotation", "hflip", "vflip"), ORIENTATIONS)
def test_reader_agrees_with_ffmpeg_autorotate(tmp_path, rotation, hflip, vflip):
    ffmpeg = _ffmpeg()
    if ffmpeg is None:
        pytest.skip("no ffmpeg binary (install one, or the imageio-ffmpeg wheel)")
    upright = quadrant_picture((96, 64))
    source = write_oriented_video(
        tmp_path / "o.mkv", [upright], rotation, hflip, vflip, codec="ffv1", pix_fmt="bgr0"
    )
    shown = subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-i",
            str(source),
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "bgr24",
            "-",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    reader = MediaReader(source)
    try:
        ours = reader.read().bgr
    finally:
        reader.close()
    assert np.frombuffer(shown, np.uint8).reshape(ours.shape).tolist() == ours.tolist()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rotation", "upright_wh"), [(90, (240, 320)), (180, (320, 240)), (270, (240, 320))]
)
def test_cli_output_and_jsonl_are_upright(tmp_path, tiny_model, rotation, upright_wh):
    source = write_oriented_video(
        tmp_path / "phone.mp4", [quadrant_picture(upright_wh)] * 6, rotation
    )
    out, dets = tmp_path / "out.mp4", tmp_path / "dets.jsonl"
    result = invoke_cli(*_run_args(source, tiny_model, out, dets))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert_jsonl_upright(dets, upright_wh, 6)
    assert_plays_upright(out, upright_wh, 6)


@pytest.mark.parametrize(
    ("rotation", "hflip", "vflip"), [(0, True, False), (90, True, False), (270, False, True)]
)
def test_mirrored_videos_are_processed_upright(tmp_path, tiny_model, rotation, hflip, vflip):
    upright_wh = (160, 224)
    source = write_oriented_video(
        tmp_path / "mirror.mov", [quadrant_picture(upright_wh)] * 4, rotation, hflip, vflip
    )
    out, dets = tmp_path / "out.mp4", tmp_path / "dets.jsonl"
    result = invoke_cli(*_run_args(source, tiny_model, out, dets))
    assert result.returncode == 0, result.stderr
    assert_jsonl_upright(dets, upright_wh, 4)
    assert_plays_upright(out, upright_wh, 4)


@pytest.mark.slow
def test_realtime_replay_is_upright(tmp_path, tiny_model):
    upright_wh = (240, 320)
    source = write_oriented_video(
        tmp_path / "phone.mp4", [quadrant_picture(upright_wh)] * 20, 270, rate=Fraction(20)
    )
    out, dets = tmp_path / "live.mp4", tmp_path / "live.jsonl"
    result = invoke_cli(*_run_args(source, tiny_model, out, dets, "--realtime"))
    assert result.returncode == 0, result.stderr
    *lines, _ = _jsonl(dets)
    assert lines and all((line["width"], line["height"]) == upright_wh for line in lines)
    assert_plays_upright(out, upright_wh)


def test_odd_size_after_rotation_start_and_stride(tmp_path, tiny_model):
    # Upright 121x161, stored 161x121 (lossless PNG in MOV takes odd sizes).
    upright_wh = (121, 161)
    source = write_oriented_video(
        tmp_path / "odd.mov", [quadrant_picture(upright_wh)] * 20, 90, codec="png", pix_fmt="rgb24"
    )
    out, dets = tmp_path / "out.mp4", tmp_path / "dets.jsonl"
    result = invoke_cli(
        *_run_args(source, tiny_model, out, dets, "--start", "0.5", "--stride", "3")
    )
    assert result.returncode == 0, result.stderr
    *lines, _ = _jsonl(dets)
    assert [line["frame"] for line in lines] == [5, 8, 11, 14, 17]
    assert all((line["width"], line["height"]) == upright_wh for line in lines)
    assert_plays_upright(out, upright_wh, 5)  # padded to 122x162, picture upright


def test_rotated_file_errors_are_one_line(tmp_path, tiny_model):
    source = write_oriented_video(tmp_path / "phone.mp4", [quadrant_picture((64, 96))] * 5, 90)
    out, dets = tmp_path / "out.mp4", tmp_path / "dets.jsonl"
    late = invoke_cli(*_run_args(source, tiny_model, out, dets, "--start", "30"))
    assert late.returncode == 1, late.stderr
    assert "no frame could be decoded after 30 s" in late.stderr
    assert len(late.stderr.strip().splitlines()) == 1 and "Traceback" not in late.stderr
    usage = invoke_cli(*_run_args(source, tiny_model, out, dets, "--codec", "nosuchcodec"))
    assert usage.returncode == 2, usage.stderr
    assert "--codec nosuchcodec" in usage.stderr and "Traceback" not in usage.stderr
    assert not out.exists()


@pytest.fixture
def http_folder(tmp_path):
    """Serves ``tmp_path`` over HTTP on 127.0.0.1; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, name="http-folder", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_stream_of_a_phone_video_is_upright(tmp_path, http_folder):
    """Streams go through OpenCV, whose FFmpeg backend applies right-angle rotations."""
    write_oriented_video(tmp_path / "phone.mp4", [quadrant_picture((96, 160))] * 5, 270)
    source = open_source(parse_source(f"{http_folder}/phone.mp4"))
    try:
        assert source.info.size_wh == (96, 160)
        _, _, bgr = source.read()
        assert quadrants_of(bgr) == UPRIGHT_QUADRANTS
    finally:
        source.release()


@pytest.mark.slow
def test_bundled_model_finds_shapes_in_a_phone_video(tmp_path):
    """The model sees upright frames and the boxes and masks are upright: a portrait shapes
    video stored sideways scores against its upright ground truth like any other."""
    needs_bundled_model()
    shape_hw, fps, seed = (480, 320), 15.0, 2468
    scenes = list(shapes.simulate_video(seed, 30, shape_hw, fps))
    truth = tmp_path / "truth.jsonl"
    shapes.write_truth(truth, scenes)
    source = write_oriented_video(
        tmp_path / "portrait.mp4",
        [cv2.cvtColor(scene.rgb, cv2.COLOR_RGB2BGR) for scene in scenes],
        270,
        rate=Fraction(15),
    )
    dets = tmp_path / "dets.jsonl"
    result = invoke_cli("run", str(source), "--no-display", "--json", str(dets))
    assert result.returncode == 0, result.stderr
    scored = invoke_cli("eval", str(dets), str(truth), "--json")
    assert scored.returncode == 0, scored.stderr
    report = json.loads(scored.stdout)
    assert report["recall"] >= 0.8 and report["precision"] >= 0.8, report
    assert report["mean_iou"] >= 0.7, report
