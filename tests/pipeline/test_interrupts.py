"""Ctrl-C and SIGTERM stop a run between frames: the frame under way is finished, written to
the video and the JSONL, and the run ends "interrupted". Real signals, the real tiny model."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from conftest import probe

from livesegment.model.cards import spec_from_card
from livesegment.pipeline import RunOptions, load_detector, run
from livesegment.pipeline.interrupts import StopRequest


def _deliver(signum: int) -> None:
    """Signal this process and wait for Python to run the handler (in the main thread)."""
    os.kill(os.getpid(), signum)
    time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_requests_a_stop_and_the_second_forces_it(signum):
    before = signal.getsignal(signum)
    with StopRequest().installed() as stop:
        _deliver(signum)
        assert stop.is_set()
        assert stop.signal_name == signal.Signals(signum).name
        with pytest.raises(KeyboardInterrupt):
            _deliver(signum)
    assert signal.getsignal(signum) is before, "the previous handler is restored"


def _signalling_loader(signum: int, at_frame: int | None):
    """The real loader; sends ``signum`` while the model loads (``at_frame`` None) or in the
    middle of inference on frame ``at_frame``."""

    def load(spec, options):
        detector = load_detector(spec, options)
        segment = detector.engine
        calls = 0

        def segment_and_signal(rgb, shape_hw):
            nonlocal calls
            if calls == at_frame:
                _deliver(signum)
            calls += 1
            return segment(rgb, shape_hw)

        if at_frame is None:
            _deliver(signum)
        detector.engine = segment_and_signal
        return detector

    return load


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_inference_finishes_and_records_that_frame(
    tmp_path, video_factory, tiny_model, signum
):
    source = video_factory(40, (160, 120), 10.0)
    out, dets = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    options = RunOptions(
        source=str(source), display=False, output=out, json_path=dets, progress=False
    )
    summary = run(options, spec_from_card(tiny_model), load=_signalling_loader(signum, 5))

    assert summary.stopped_early == "interrupted"
    assert summary.frames_processed == 6, "the frame being segmented is finished, no more"
    lines = [json.loads(line) for line in dets.read_text().splitlines()]
    assert [line["frame"] for line in lines[:-1]] == list(range(6))
    assert lines[-1]["summary"]["stopped_early"] == "interrupted"
    assert probe(out)[1] == 6
    assert summary.frames_dropped == summary.frames_captured - summary.frames_processed


def test_signal_while_the_model_loads_creates_no_output(tmp_path, video_factory, tiny_model):
    source = video_factory(40, (160, 120), 10.0)
    out, dets = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    options = RunOptions(
        source=str(source), display=False, output=out, json_path=dets, progress=False
    )
    summary = run(options, spec_from_card(tiny_model), load=_signalling_loader(signal.SIGINT, None))

    assert summary.stopped_early == "interrupted"
    assert summary.frames_processed == 0
    assert not out.exists() and not dets.exists()
