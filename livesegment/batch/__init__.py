"""``livesegment batch``: many videos, each segmented by the same pipeline as ``run``.

``jobs`` turns INPUTS into one ``VideoJob`` per video with its output paths, ``manifest``
records every attempt (JSON Lines), ``worker`` segments one video with a loaded ``Detector``
(the function a local worker process, and later a Ray actor, calls), ``driver`` decides what to
skip, hands the rest to workers and records what came back.
"""
