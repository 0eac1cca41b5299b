"""The writer thread: frames reach the files in order and complete, the queue is bounded, a
failing output stops the run at once with the other outputs closed, ``r`` falls between the
same frames as the key, and drawing and writing overlap the next inference. Real files, real
sinks; the network is a fake engine (timing and threads only) except in the CLI test."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import frame_for_index, invoke_cli, probe, tiny_spec

from livesegment.errors import OutputError
from livesegment.model.detector import Detector
from livesegment.output.sinks import JsonlSink
from livesegment.pipeline import RunOptions, run
from livesegment.pipeline.runner import RecordingSink
from livesegment.pipeline.writer import QUEUE_SIZE, FrameWriter, Job
from livesegment.structures import Candidates, Detections, Frame, FrameResult
from livesegment.video.sources import open_source, parse_source

SIZE_WH = (160, 120)


def one_circle(rgb: np.ndarray, shape_hw: tuple[int, int]) -> Candidates:
    """A fake network: one confident circle in the middle of every frame."""
    height, width = shape_hw
    return Candidates(
        np.array([[width / 4, height / 4, width * 3 / 4, height * 3 / 4]], np.float32),
        np.array([0.9], np.float32),
        np.array([1], np.int32),
        np.array(["circle"]),
        np.ones((1, 28, 28), np.float32),
        (height, width),
    )


class CountingLoader:
    """``run``'s loader: a Detector on the fake network, counting its calls."""

    def __init__(self, engine=one_circle):
        self.calls = 0
        self._engine = engine

    def __call__(self, spec, options) -> Detector:
        def engine(rgb, shape_hw):
            self.calls += 1
            return self._engine(rgb, shape_hw)

        return Detector(engine, spec)


def result_for(index: int) -> FrameResult:
    bgr = frame_for_index(index, SIZE_WH)
    return FrameResult(
        Frame(index, index / 10, bgr, bgr[..., ::-1], time.monotonic()),
        Detections.empty(bgr.shape[:2], "nothing found by the model"),
    )


def grey_levels(path: Path) -> np.ndarray:
    """Each frame's grey level (``frame_for_index`` steps it by 8 per frame), read where the
    HUD, the circle, its label, the digit and the banner leave the frame alone."""
    with av.open(str(path)) as container:
        return np.array(
            [
                np.median(frame.to_ndarray(format="bgr24")[64:88, -24:])
                for frame in container.decode(video=0)
            ]
        )


def assert_in_order(levels: np.ndarray, first: int, count: int) -> None:
    """Frames ``first`` .. ``first + count - 1`` (under 32, so no wrap), each once, in order:
    the level climbs by about 8 a frame (H.264 and dark levels move it by a few)."""
    assert len(levels) == count
    assert abs(levels[0] - first * 8) <= 6
    assert np.all(np.abs(np.diff(levels) - 8) <= 4), levels


def jsonl_frames(path: Path) -> tuple[list[int], dict | None]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    summary = lines.pop()["summary"] if lines and "summary" in lines[-1] else None
    return [line["frame"] for line in lines], summary


class SlowJsonl(JsonlSink):
    """A real JSONL file whose every write takes ``delay_s``, or waits for ``gate``."""

    def __init__(self, path: Path, delay_s: float = 0.0, gate: threading.Event | None = None):
        super().__init__(path)
        self.delay_s, self.gate = delay_s, gate

    def write(self, result, picture=None) -> None:
        if self.gate is not None:
            assert self.gate.wait(10), "the test never opened the gate"
        time.sleep(self.delay_s)
        super().write(result, picture)


def test_frames_reach_the_video_and_jsonl_in_order_and_the_summary_is_complete(
    tmp_path, video_factory
):
    source = video_factory(40, SIZE_WH, 10.0)
    out, dets = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    # Untracked: on a 160x120 frame the HUD's unique-objects line would cover the strip
    # ``grey_levels`` reads (tracked runs: test_tracked_runs.py).
    options = RunOptions(
        source=str(source), display=False, output=out, json_path=dets, progress=False, track=False
    )
    summary = run(options, tiny_spec(tmp_path / "unused.h5"), load=CountingLoader())

    assert summary.frames_processed == 40
    assert summary.detections_per_class == {"circle": 40}
    frames, last = jsonl_frames(dets)
    assert frames == list(range(40))
    assert last is not None and last["frames_processed"] == 40
    assert_in_order(grey_levels(out)[:32], 0, 32)
    assert len(grey_levels(out)) == 40
    assert summary.files_written == [out, dets]


def test_a_slow_writer_blocks_the_producer_once_the_queue_is_full(tmp_path):
    gate = threading.Event()
    sink = SlowJsonl(tmp_path / "slow.jsonl", gate=gate)
    submitted = []
    with FrameWriter([sink]) as writer:

        def produce():
            for index in range(10):
                writer.submit(Job(result_for(index)))
                submitted.append(index)

        producer = threading.Thread(target=produce, name="test-producer")
        producer.start()
        time.sleep(0.5)
        # One frame is in the sink's hands, QUEUE_SIZE wait; the next submit blocks.
        assert len(submitted) == QUEUE_SIZE + 1, submitted
        assert producer.is_alive()
        gate.set()
        producer.join(10)
        assert not producer.is_alive()
    sink.close()
    assert jsonl_frames(sink.path)[0] == list(range(10))


def test_drawing_and_writing_overlap_the_next_inference(tmp_path):
    sink = SlowJsonl(tmp_path / "slow.jsonl", delay_s=0.1)
    started = time.monotonic()
    with FrameWriter([sink]) as writer:
        for index in range(10):
            time.sleep(0.1)  # the model's turn
            writer.submit(Job(result_for(index)))
    elapsed_s = time.monotonic() - started
    sink.close()
    assert jsonl_frames(sink.path)[0] == list(range(10)), "leaving waits for every frame"
    assert elapsed_s < 1.6, f"{elapsed_s:.2f} s: one after the other would take 2 s"


def test_a_failing_output_stops_the_run_at_once_and_the_video_is_closed(tmp_path, video_factory):
    source = video_factory(60, SIZE_WH, 10.0)
    out = tmp_path / "out.mp4"
    # The JSONL waits for the video's first durable fragment, then cannot be written.
    options = RunOptions(
        source=str(source), display=False, output=out, json_path=Path("/dev/full"), progress=False
    )
    loader = CountingLoader()
    with pytest.raises(OutputError, match="/dev/full"):
        run(options, tiny_spec(tmp_path / "unused.h5"), load=loader)
    _, frames, *_ = probe(out)  # closed: it opens and decodes
    assert frames >= 10
    # The failing line waits for the encoder's lookahead; past it, only the queue's frames and
    # the one being inferred may still be computed.
    assert loader.calls <= frames + QUEUE_SIZE + 2 < 60, "the run went on after the output failed"


def test_a_failing_output_exits_1_with_one_line(tmp_path, video_factory, tiny_model):
    result = invoke_cli(
        "run",
        str(video_factory(30, SIZE_WH, 10.0)),
        "--model",
        str(tiny_model.with_suffix(".h5")),
        "--no-display",
        "--output",
        str(tmp_path / "out.mp4"),
        "--json",
        "/dev/full",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--json /dev/full" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert probe(tmp_path / "out.mp4")[1] >= 10


def test_a_recording_starts_and_stops_between_the_frames_the_key_fell_between(
    tmp_path, video_factory
):
    source = open_source(parse_source(str(video_factory(40, SIZE_WH, 10.0))))
    try:
        recorder = RecordingSink(
            RunOptions(source=source.request, snapshot_dir=tmp_path), source, protected=[]
        )
        with FrameWriter([recorder]) as writer:
            for index in range(15):
                if index in (5, 10):
                    writer.call(recorder.toggle)
                writer.submit(Job(result_for(index)))
    finally:
        source.release()
    recorder.close()
    assert len(recorder.paths) == 1
    assert_in_order(grey_levels(recorder.paths[0]), 5, 5)


def test_a_second_interrupt_drops_what_waits_and_stops_at_once(tmp_path):
    sink = SlowJsonl(tmp_path / "slow.jsonl", delay_s=0.3)
    writer = FrameWriter([sink])
    with pytest.raises(KeyboardInterrupt), writer:
        for index in range(QUEUE_SIZE + 1):
            writer.submit(Job(result_for(index)))
        started = time.monotonic()
        raise KeyboardInterrupt
    assert time.monotonic() - started < 1.0
    sink.close()
    assert len(jsonl_frames(sink.path)[0]) < QUEUE_SIZE + 1


def test_an_error_in_an_action_comes_back_on_the_main_thread(tmp_path):
    sink = JsonlSink(tmp_path / "ok.jsonl")

    def broken():
        raise OutputError("snapshot x.png: could not be written")

    with pytest.raises(OutputError, match="could not be written"), FrameWriter([sink]) as writer:
        writer.submit(Job(result_for(0)))
        writer.call(broken)
        for index in range(1, 20):
            time.sleep(0.02)
            writer.submit(Job(result_for(index)))
    sink.close()
    assert jsonl_frames(sink.path)[0] == [0], "nothing is written after the failure"
