"""Still images in and out through the real CLI: PNG, JPEG and WebP with EXIF orientations,
folders, globs, wrong --output suffixes and outputs that would replace an input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import invoke_cli
from PIL import Image, ImageOps

from livesegment.video.images import read_upright

SIZE_WH = (160, 120)
BACKGROUND_BGR = (160, 180, 200)
CIRCLE_BGR = (200, 30, 30)
ORIENTATION_TAG = 0x0112


def circle_scene(center_xy=(45, 40), radius=25) -> np.ndarray:
    """(120, 160, 3) uint8 BGR: one filled circle the bundled model finds, off-centre so that
    every EXIF orientation moves it somewhere else."""
    bgr = np.full((SIZE_WH[1], SIZE_WH[0], 3), BACKGROUND_BGR, np.uint8)
    cv2.circle(bgr, center_xy, radius, CIRCLE_BGR, -1)
    return bgr


def save_with_orientation(path: Path, bgr: np.ndarray, orientation: int | None) -> Path:
    """Write ``bgr`` as stored pixels with an EXIF orientation tag (Pillow: a JPEG APP1, a PNG
    eXIf chunk, a WebP EXIF chunk, a TIFF tag)."""
    image = Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]))
    options: dict = {"quality": 95} if path.suffix in (".jpg", ".jpeg") else {}
    if path.suffix == ".webp":
        options["lossless"] = True
    if orientation is not None:
        exif = Image.Exif()
        exif[ORIENTATION_TAG] = orientation
        options["exif"] = exif if path.suffix in (".tif", ".tiff") else exif.tobytes()
    image.save(path, **options)
    return path


def upright_reference(path: Path) -> np.ndarray:
    """What a viewer shows: Pillow's own reading of the orientation, as (H, W, 3) BGR."""
    with Image.open(path) as image:
        return np.array(ImageOps.exif_transpose(image).convert("RGB"))[:, :, ::-1].copy()


def circle_center_xy(bgr: np.ndarray) -> tuple[float, float]:
    close = np.abs(bgr.astype(int) - CIRCLE_BGR).sum(axis=2) < 90
    ys, xs = np.nonzero(close)
    return float(xs.mean()), float(ys.mean())


def exif_orientation(path: Path) -> int | None:
    with Image.open(path) as image:
        return image.getexif().get(ORIENTATION_TAG)


def jsonl(path: Path) -> tuple[list[dict], dict]:
    *lines, last = [json.loads(line) for line in path.read_text().splitlines()]
    return lines, last["summary"]


def assert_one_circle_at(line: dict, center_xy: tuple[float, float], tolerance: float = 8):
    assert [det["class"] for det in line["detections"]] == ["circle"], line
    x1, y1, x2, y2 = line["detections"][0]["box"]
    assert abs((x1 + x2) / 2 - center_xy[0]) < tolerance, (line["detections"][0]["box"], center_xy)
    assert abs((y1 + y2) / 2 - center_xy[1]) < tolerance, (line["detections"][0]["box"], center_xy)
    assert line["detections"][0]["mask"]["size"] == [line["height"], line["width"]]


def one_error_line(result, code: int, *needles: str) -> str:
    """The single ``Error:`` line of a failed run (click adds its usage lines for exit 2)."""
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert "Traceback" not in output, output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    for needle in needles:
        assert needle in errors[0], output
    return errors[0]


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tiff"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_images_are_read_upright_for_every_exif_orientation(tmp_path, suffix, orientation):
    path = save_with_orientation(tmp_path / f"o{orientation}{suffix}", circle_scene(), orientation)
    expected = upright_reference(path)
    got = read_upright(path)
    assert got.shape == expected.shape
    assert got.shape[:2] == ((160, 120) if orientation >= 5 else (120, 160))
    assert np.abs(got.astype(int) - expected).mean() < 2


@pytest.mark.slow
def test_png_in_png_out_at_source_resolution_without_the_hud(tmp_path):
    source = tmp_path / "shape.png"
    cv2.imwrite(str(source), circle_scene(center_xy=(115, 80)))
    out, dets = tmp_path / "out.png", tmp_path / "dets.jsonl"
    result = invoke_cli(
        "run", str(source), "--output", str(out), "--json", str(dets), "--no-display"
    )
    assert result.returncode == 0, result.stderr
    assert f"wrote: {out}" in result.stdout and f"wrote: {dets}" in result.stdout

    picture, original = cv2.imread(str(out), cv2.IMREAD_UNCHANGED), cv2.imread(str(source))
    assert picture.shape == (120, 160, 3)
    # The live HUD (rates, latency, threshold) would darken the top-left strip.
    assert np.array_equal(picture[:30, :80], original[:30, :80])
    inside = np.abs(picture.astype(int) - original)[70:90, 105:125].mean()
    assert inside > 10, "the mask is drawn over the circle"

    lines, summary = jsonl(dets)
    assert len(lines) == 1 and summary["frames_processed"] == 1
    line = lines[0]
    assert set(line) == {"frame", "source", "time_s", "threshold", "width", "height", "detections"}
    assert (line["frame"], line["source"], line["time_s"]) == (0, "shape.png", 0.0)
    assert (line["width"], line["height"]) == (160, 120)
    assert_one_circle_at(line, (115, 80))


@pytest.mark.slow
def test_jpeg_with_exif_orientation_6_reaches_the_model_upright_and_is_written_upright(tmp_path):
    photos, segmented = tmp_path / "photos", tmp_path / "segmented"
    photos.mkdir()
    segmented.mkdir()
    source = save_with_orientation(photos / "portrait.jpg", circle_scene(), 6)
    assert cv2.imread(str(source), cv2.IMREAD_IGNORE_ORIENTATION | cv2.IMREAD_COLOR).shape == (
        120,
        160,
        3,
    ), "stored landscape, shown portrait"
    reference = upright_reference(source)
    dets = tmp_path / "dets.jsonl"
    result = invoke_cli(
        "run", str(source), "--output", str(segmented), "--json", str(dets), "--no-display"
    )
    assert result.returncode == 0, result.stderr

    out = segmented / "portrait.jpg"
    assert f"wrote: {out}" in result.stdout
    assert exif_orientation(out) in (None, 1), "nothing may turn the upright copy again"
    picture = cv2.imread(str(out))
    assert picture.shape == (160, 120, 3)
    assert np.abs(picture.astype(int) - reference)[110:, :].mean() < 4, (
        "away from the circle the copy is the upright photo"
    )

    (line,), _ = jsonl(dets)
    assert (line["source"], line["width"], line["height"]) == ("portrait.jpg", 120, 160)
    assert_one_circle_at(line, circle_center_xy(reference))


@pytest.mark.slow
def test_folder_is_processed_in_name_order_one_upright_output_per_image(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    scene = circle_scene()
    save_with_orientation(photos / "img10.png", scene, None)
    save_with_orientation(photos / "img2.png", scene, 6)
    save_with_orientation(photos / "b.webp", scene, 8)
    save_with_orientation(photos / "a.jpg", scene, 3)
    (photos / "notes.txt").write_text("not an image\n")
    (photos / "sub").mkdir()
    save_with_orientation(photos / "sub" / "c.png", scene, None)
    order = ["a.jpg", "b.webp", "img2.png", "img10.png"]
    upright = {name: upright_reference(photos / name) for name in order}

    segmented, dets = tmp_path / "segmented", tmp_path / "dets.jsonl"
    assert not segmented.exists()
    result = invoke_cli(
        "run", str(photos), "--output", str(segmented), "--json", str(dets), "--no-display"
    )
    assert result.returncode == 0, result.stderr
    assert f"wrote: 4 images in {segmented}" in result.stdout

    assert sorted(path.name for path in segmented.iterdir()) == sorted(order)
    lines, summary = jsonl(dets)
    assert summary["frames_processed"] == 4 and summary["failure"] is None
    assert [line["source"] for line in lines] == order
    assert [line["frame"] for line in lines] == [0, 1, 2, 3]
    for line in lines:
        name = line["source"]
        height, width = upright[name].shape[:2]
        assert set(line) == {
            "frame",
            "source",
            "time_s",
            "threshold",
            "width",
            "height",
            "detections",
        }
        assert (line["width"], line["height"]) == (width, height), name
        assert_one_circle_at(line, circle_center_xy(upright[name]))
        out = segmented / name
        assert cv2.imread(str(out)).shape == (height, width, 3), name
        assert exif_orientation(out) in (None, 1), name


@pytest.mark.slow
def test_glob_source_takes_only_what_matches(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("b.png", "a.png"):
        cv2.imwrite(str(photos / name), circle_scene())
    cv2.imwrite(str(photos / "c.jpg"), circle_scene())
    out, dets = tmp_path / "out", tmp_path / "dets.jsonl"
    # No shell here: the pattern reaches livesegment as a quoted one would.
    result = invoke_cli(
        "run", f"{photos}/*.png", "--output", str(out), "--json", str(dets), "--no-display"
    )
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in out.iterdir()) == ["a.png", "b.png"]
    lines, _ = jsonl(dets)
    assert [(line["frame"], line["source"]) for line in lines] == [(0, "a.png"), (1, "b.png")]


@pytest.mark.slow
def test_an_unreadable_image_is_skipped_reported_and_exits_1(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.png"), circle_scene())
    (photos / "b.png").write_text("not an image\n")
    cv2.imwrite(str(photos / "c.png"), circle_scene())
    out, dets = tmp_path / "out", tmp_path / "dets.jsonl"
    result = invoke_cli(
        "run", str(photos), "--output", str(out), "--json", str(dets), "--no-display"
    )
    line = one_error_line(result, 1, "1 of 3 images could not be read", "b.png")
    assert "a.png" not in line and "c.png" not in line
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert sorted(path.name for path in out.iterdir()) == ["a.png", "c.png"]
    lines, summary = jsonl(dets)
    assert [(line["frame"], line["source"]) for line in lines] == [(0, "a.png"), (2, "c.png")]
    assert "b.png" in summary["failure"]


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(folder / name), circle_scene())
    return folder


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["{video}", "--output", "{tmp}/out.png"], ["--output", "is a video", ".mp4"]),
        (["{video}", "--output", "{tmp}/out.JPG"], ["--output", "is a video", ".mp4"]),
        (["0", "--output", "{tmp}/out.webp"], ["--output", ".mp4"]),
        (["{photos}/a.png", "--output", "{tmp}/out.mp4"], ["--output", "is an image", ".png"]),
        (["{photos}/a.png", "--output", "{tmp}/out.mkv"], ["--output", "is an image", ".jpg"]),
        (["{photos}/a.png", "--output", "{tmp}/out.xyz"], ["--output", "unsupported", ".png"]),
        (["{photos}", "--output", "{tmp}/out.png"], ["--output", "must be a folder"]),
        (["{photos}/*.png", "--output", "{tmp}/out.mp4"], ["--output", "must be a folder"]),
        (["{photos}", "--output", "{photos}"], ["--output", "source folder"]),
        (["{photos}", "--output", "{photos}/../photos/"], ["--output", "source folder"]),
        (["{photos}/*.png", "--output", "{photos}"], ["--output", "same file as SOURCE"]),
        (["{photos}/a.png", "--output", "{photos}/../photos/a.png"], ["same file as SOURCE"]),
        (["{photos}/a.png", "--output", "{photos}"], ["--output", "same file as SOURCE"]),
        (
            ["{photos}", "--output", "{tmp}/out", "--json", "{photos}/b.png"],
            ["--json", "same file as SOURCE"],
        ),
        (
            ["{photos}", "--output", "{tmp}/made", "--json", "{tmp}/made/a.png"],
            ["--json", "same file"],
        ),
    ],
)
def test_wrong_outputs_for_images_are_usage_errors(tmp_path, photos, video_factory, args, needles):
    (tmp_path / "made").mkdir()
    before = {path: path.read_bytes() for path in photos.iterdir()}
    args = [arg.format(video=video_factory(3), tmp=tmp_path, photos=photos) for arg in args]
    result = invoke_cli("run", *args, "--no-display")
    one_error_line(result, 2, *needles)
    assert {path: path.read_bytes() for path in photos.iterdir()} == before
    assert not (tmp_path / "out").exists() and not list((tmp_path / "made").iterdir())
    assert not list(tmp_path.glob("out.*"))


@pytest.mark.parametrize(
    ("source", "output", "needle"),
    [
        ("{photos}", "{tmp}/missing/out", "folder {tmp}/missing does not exist"),
        ("{empty}", "{tmp}/out", "no images in this folder"),
        ("{photos}/*.jpg", "{tmp}/out", "no file matches this pattern"),
        ("{broken}", "{tmp}/out", "none of its 2 images could be read"),
        ("{broken}/x.png", "{tmp}/out.png", "not a readable image"),
    ],
)
def test_image_sources_that_cannot_run_exit_1_before_writing(
    tmp_path, photos, source, output, needle
):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here\n")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.png").write_text("not an image\n")
    (broken / "y.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    names = {"tmp": tmp_path, "photos": photos, "empty": tmp_path / "empty", "broken": broken}
    result = invoke_cli(
        "run",
        source.format(**names),
        "--output",
        output.format(**names),
        "--json",
        str(tmp_path / "dets.jsonl"),
        "--no-display",
    )
    one_error_line(result, 1, needle.format(**names))
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.png").exists()
    assert not (tmp_path / "dets.jsonl").exists()
