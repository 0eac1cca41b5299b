"""What the browser view shows of a run besides its frames: the HUD's live figures and the
state of each control."""

from __future__ import annotations

from typing import TYPE_CHECKING

from livesegment.structures import unique_objects

if TYPE_CHECKING:
    from livesegment.pipeline.results import ResultStream


def run_status(results: ResultStream, session) -> dict:
    """The HUD's figures and the controls' states for the browser view.

    ``session`` is the run's loop state (``runner._Session``: controls, recorder, recording,
    inference FPS). Called on the server's thread, so it only reads: a value a frame old is
    fine, a write is not.
    """
    controls, stats, recorder = session.controls, results.stats, session.recorder
    style = controls.style
    writer = recorder.writer if recorder is not None else None
    # A copy made in one step: the main thread may add a class while this reads.
    counts = dict(results.tracker.count_per_class) if results.tracker is not None else {}
    return {
        "hud": {
            "inference_fps": round(session.inference_fps.fps, 2),
            "capture_fps": round(stats.fps.fps, 2),
            "dropped": stats.dropped,
            "threshold": controls.threshold,
            "classes": sorted(controls.classes) if controls.classes is not None else None,
            "unique_objects": unique_objects(counts) if counts else None,
        },
        "controls": {
            "threshold": controls.threshold,
            "classes": sorted(controls.classes) if controls.classes is not None else None,
            "boxes": style.boxes,
            "labels": style.labels,
            "masks": style.masks,
            "paused": controls.paused,
        },
        "recording": {
            "available": recorder is not None,
            "on": session.recording,
            "file": str(writer.path) if writer is not None else None,
            "files": [str(path) for path in list(recorder.paths)] if recorder else [],
        },
    }
