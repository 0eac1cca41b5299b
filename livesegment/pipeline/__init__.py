"""The spine: ``stream()`` yields one ``FrameResult`` per frame; ``run()`` drives stream ->
annotate -> sinks for ``livesegment run``; the viewer's controls and stop requests."""

from livesegment.pipeline.results import ResultStream, stream
from livesegment.pipeline.runner import RunOptions, load_detector, run

__all__ = ["ResultStream", "RunOptions", "load_detector", "run", "stream"]
