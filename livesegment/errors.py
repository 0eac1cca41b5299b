"""Typed errors. Only ``cli.py`` turns them into click errors and exit codes."""

from __future__ import annotations


class LivesegmentError(Exception):
    """Base of every error a user can cause; its message is one line naming the fix."""


class SourceError(LivesegmentError):
    """The video source cannot be opened or read."""


class ModelError(LivesegmentError):
    """The weights file or model card is missing, corrupt or does not match."""


class OutputError(LivesegmentError):
    """An output file cannot be written."""


class DisplayError(LivesegmentError):
    """No window can be shown."""


class UsageError(LivesegmentError):
    """An option value is wrong (exit code 2, like click's own usage errors)."""
