"""Recordings you can trust: H.264 with the source's audio, files that survive being killed,
damaged input processed as far as it decodes, exact frame rates, strides and full disks."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from fractions import Fraction

import av
import numpy as np
import pytest
from conftest import ROOT, invoke_cli, needs_shared_data, probe, write_video


def make_av_source(
    path,
    seconds: float = 3.0,
    rate=Fraction(15),
    size_wh=(320, 240),
    audio: bool = True,
    codec: str = "mpeg4",
):
    """A real MP4 with a moving square and, optionally, a 440 Hz AAC track."""
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=rate)
        video.width, video.height, video.pix_fmt = *size_wh, "yuv420p"
        sound = container.add_stream("aac", rate=44100) if audio else None
        n_frames = round(seconds * rate)
        for index in range(n_frames):
            bgr = np.full((size_wh[1], size_wh[0], 3), 90, np.uint8)
            x = 10 + index * 3 % (size_wh[0] - 60)
            bgr[60:110, x : x + 50] = (20, 200, 250)
            frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")
            frame.pts = index
            frame.time_base = 1 / rate
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if sound is not None:
            samples = int(seconds * 44100)
            t = np.arange(samples) / 44100
            wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = wave[start : start + 1024]
                frame = av.AudioFrame.from_ndarray(chunk[None], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 44100, start
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode(None):
                container.mux(packet)
    return path


def _run(source, tmp_path, tiny_model, *extra, name="out.mp4"):
    out, dets = tmp_path / name, tmp_path / (name + ".jsonl")
    result = invoke_cli(
        "run",
        str(source),
        "--model",
        str(tiny_model.with_suffix(".h5")),
        "--no-display",
        "--output",
        str(out),
        "--json",
        str(dets),
        *extra,
    )
    return result, out, dets


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_h264_output_keeps_the_source_audio(tmp_path, tiny_model):
    source = make_av_source(tmp_path / "with_audio.mp4")
    *_, source_audio = probe(source)
    result, out, _ = _run(source, tmp_path, tiny_model)
    assert result.returncode == 0, result.stderr
    codec, frames, _, _, audio = probe(out)
    assert codec == "h264" and frames == 45
    assert audio is not None and audio == pytest.approx(source_audio, abs=0.1)

    result, quiet, _ = _run(source, tmp_path, tiny_model, "--no-audio", name="quiet.mp4")
    assert result.returncode == 0, result.stderr
    assert probe(quiet)[4] is None


def test_range_and_stride_cut_audio_and_keep_duration(tmp_path, tiny_model):
    source = make_av_source(tmp_path / "long.mp4", seconds=4.0)
    result, out, dets = _run(
        source, tmp_path, tiny_model, "--start", "1", "--end", "3", "--stride", "3"
    )
    assert result.returncode == 0, result.stderr
    _, frames, _, duration, audio = probe(out)
    assert frames == 10  # 30 frames in [1, 3) s, every third
    assert duration == pytest.approx(2.0, abs=0.1)
    assert audio == pytest.approx(2.0, abs=0.1)
    lines = _jsonl(dets)[:-1]
    assert [line["frame"] for line in lines] == list(range(15, 45, 3))


def test_23_976_stays_23_976_and_stride_keeps_duration(tmp_path, tiny_model):
    source = make_av_source(
        tmp_path / "ntsc.mp4", seconds=3.0, rate=Fraction(24000, 1001), audio=False
    )
    result, out, _ = _run(source, tmp_path, tiny_model)
    assert result.returncode == 0, result.stderr
    _, frames, rate, duration, _ = probe(out)
    assert float(rate) == pytest.approx(23.976, abs=0.001)
    result, strided, _ = _run(source, tmp_path, tiny_model, "--stride", "3", name="s.mp4")
    _, strided_frames, _, strided_duration, _ = probe(strided)
    assert strided_frames == -(-frames // 3)
    assert strided_duration == pytest.approx(duration, abs=0.15)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_killed_run_leaves_playable_output_and_valid_jsonl(tmp_path, tiny_model, signum):
    source = make_av_source(tmp_path / "long.mp4", seconds=60, audio=False)
    out, dets = tmp_path / "killed.mp4", tmp_path / "killed.jsonl"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "livesegment",
            "run",
            str(source),
            "--model",
            str(tiny_model.with_suffix(".h5")),
            "--no-display",
            "--output",
            str(out),
            "--json",
            str(dets),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while (
        not dets.exists() or len(dets.read_text().splitlines()) < 12
    ) and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signum)
    _stdout, stderr = process.communicate(timeout=60)
    assert "Traceback" not in stderr
    lines = [json.loads(line) for line in dets.read_text().splitlines()]  # all valid JSON
    frame_lines = [line for line in lines if "frame" in line]
    assert len(frame_lines) >= 12
    assert [line["frame"] for line in frame_lines] == list(range(len(frame_lines)))
    _, frames, *_ = probe(out)
    assert frames >= len(frame_lines), "the video holds every frame the JSONL lists"
    if signum != signal.SIGKILL:
        assert process.returncode == 130
        assert lines[-1]["summary"]["stopped_early"] == "interrupted"


def _damaged(tmp_path, kind):
    source = write_video(tmp_path / "good.avi", 60, (160, 120), 15.0)
    data = bytearray(source.read_bytes())
    path = tmp_path / f"{kind}.avi"
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:
        rng = np.random.default_rng(7)
        for start in range(len(data) // 3, 2 * len(data) // 3, len(data) // 12):
            data[start : start + 300] = rng.bytes(300)
        path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("kind", ["truncated", "overwritten", "tree"])
def test_partly_readable_input_processes_what_decodes(tmp_path, tiny_model, kind):
    source = needs_shared_data("tree.avi") if kind == "tree" else _damaged(tmp_path, kind)
    with av.open(str(source)) as container:
        decodable = 0
        for packet in container.demux(video=0):
            try:
                decodable += len(packet.decode())
            except av.error.FFmpegError:
                pass
    result, out, dets = _run(source, tmp_path, tiny_model)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"frames processed: {decodable}" in result.stdout
    assert probe(out)[1] == decodable
    assert _jsonl(dets)[-1]["summary"]["frames_processed"] == decodable
    if kind == "tree":
        assert "the file claims 444 frames; 68 decoded" in result.stdout
    if kind == "overwritten":
        assert "frames could not be decoded" in result.stdout or decodable == 60


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "file is empty (0 bytes)"),
        (b"just some text, not a video\n" * 10, "not a readable video"),
    ],
)
def test_unreadable_input_is_one_line(tmp_path, tiny_model, content, needle):
    source = tmp_path / "bad.mp4"
    source.write_bytes(content)
    result, out, _ = _run(source, tmp_path, tiny_model)
    assert result.returncode == 1
    assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_full_device_fails_with_one_line(tmp_path, tiny_model, video_factory):
    result, *_ = _run(video_factory(20), tmp_path, tiny_model, name="ignored.mp4")
    assert result.returncode == 0
    result = invoke_cli(
        "run",
        str(video_factory(20)),
        "--model",
        str(tiny_model.with_suffix(".h5")),
        "--no-display",
        "--output",
        "/dev/full",
    )
    assert result.returncode == 1
    assert "--output /dev/full" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_tiny_disk_keeps_what_was_written_playable(tmp_path, tiny_model):
    mount = tmp_path / "tiny"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        source = make_av_source(tmp_path / "src.mp4", seconds=20, audio=False)
        out = mount / "out.mp4"
        result = invoke_cli(
            "run",
            str(source),
            "--model",
            str(tiny_model.with_suffix(".h5")),
            "--no-display",
            "--output",
            str(out),
        )
        assert result.returncode == 1, result.stdout
        assert "no space left on device" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        _, frames, *_ = probe(out)
        assert frames > 10
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_variable_frame_rate_keeps_its_timing(tmp_path, tiny_model):
    source = tmp_path / "vfr.mp4"
    times = [0.0, 0.1, 0.15, 0.5, 0.55, 1.2, 1.25, 1.3]
    with av.open(str(source), "w") as container:
        stream = container.add_stream("mpeg4", rate=20)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for index, time_s in enumerate(times):
            frame = av.VideoFrame.from_ndarray(
                np.full((120, 160, 3), index * 20, np.uint8), format="bgr24"
            )
            frame.pts, frame.time_base = round(time_s * 1000), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    result, out, dets = _run(source, tmp_path, tiny_model)
    assert result.returncode == 0, result.stderr
    assert [line["time_s"] for line in _jsonl(dets)[:-1]] == pytest.approx(times, abs=0.002)
    with av.open(str(out)) as container:
        written = [float(frame.time) for frame in container.decode(video=0)]
    assert written == pytest.approx(times, abs=0.002)


def test_odd_size_is_padded_to_even(tmp_path, tiny_model):
    source = tmp_path / "odd.mov"
    with av.open(str(source), "w") as container:
        stream = container.add_stream("png", rate=10)
        stream.width, stream.height, stream.pix_fmt = 161, 121, "rgb24"
        for index in range(5):
            frame = av.VideoFrame.from_ndarray(
                np.full((121, 161, 3), 40 * index, np.uint8), format="rgb24"
            )
            frame.pts, frame.time_base = index, Fraction(1, 10)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    result, out, dets = _run(source, tmp_path, tiny_model)
    assert _jsonl(dets)[0]["width"] == 161, "detections stay in source pixels"
    assert result.returncode == 0, result.stderr
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (162, 122)
        assert stream.codec_context.pix_fmt == "yuv420p"


def test_unavailable_codec_is_a_usage_error(tmp_path, tiny_model, video_factory):
    result, out, _ = _run(video_factory(5), tmp_path, tiny_model, "--codec", "nosuchcodec")
    assert result.returncode == 2
    assert "--codec nosuchcodec" in result.stderr and "available: h264" in result.stderr
    assert not out.exists()
    result, out, _ = _run(video_factory(5), tmp_path, tiny_model, "--codec", "mjpeg", name="m.mkv")
    assert result.returncode == 0, result.stderr
    assert probe(out)[0] == "mjpeg"


def test_real_footage_with_ac3_audio_and_reordered_timestamps(tmp_path, tiny_model):
    """Megamind.avi: XVID with packed B-frames (timestamps arrive out of order) and AC-3
    audio that MP4 cannot take from AVI as is (so it is encoded as AAC)."""
    source = needs_shared_data("Megamind.avi")
    result, out, dets = _run(source, tmp_path, tiny_model, "--end", "3")
    assert result.returncode == 0, result.stderr
    codec, frames, rate, duration, audio = probe(out)
    assert codec == "h264" and frames == 71
    assert float(rate) == pytest.approx(23.976, abs=0.001)
    assert audio == pytest.approx(duration, abs=0.1)
    times = [line["time_s"] for line in _jsonl(dets)[:-1]]
    assert np.all(np.diff(times) > 0.04), "source timestamps put back in order"
    with av.open(str(out)) as container:
        written = [float(frame.time) for frame in container.decode(video=0)]
    assert np.diff(written) == pytest.approx(1 / 23.976, abs=0.002)
