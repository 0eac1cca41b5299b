"""Typed errors. Only the CLI turns them into click errors and exit codes."""

from __future__ import annotations


class LivesegmentError(Exception):
    """Base of every error a user can cause; its message is one line naming the fix.

    Messages name no command-line flags: ``parameter`` says which argument of the library call
    was wrong (``"output"``, ``"classes"``) and ``value`` what it was, so the CLI can put its own
    flag in front ("--output out.mp4: cannot create …").
    """

    def __init__(self, message: str, *, parameter: str | None = None, value: object = None):
        super().__init__(message if value is None else f"{value}: {message}")
        self.detail = message
        self.parameter = parameter
        self.value = value


class SourceError(LivesegmentError):
    """The video source cannot be opened or read."""


class ModelError(LivesegmentError):
    """The weights file or model card is missing, corrupt or does not match."""


class OutputError(LivesegmentError):
    """An output file cannot be written."""


class ClusterError(LivesegmentError):
    """The Ray cluster cannot be started, joined or used."""


class DisplayError(LivesegmentError):
    """No window can be shown."""


class ServeError(LivesegmentError):
    """The browser view cannot be served (the address is taken or not this machine's)."""


class UsageError(LivesegmentError):
    """An option value is wrong (exit code 2, like click's own usage errors)."""


class SameFileError(UsageError):
    """An output is an input, or another output: writing it would destroy the other.

    ``output`` and ``other`` are (argument name, path); ``render`` words it with the names a
    caller shows (the CLI's flags).
    """

    def __init__(
        self, output: tuple[str, object], other: tuple[str, object], *, overwrites_input: bool
    ):
        self.output, self.other, self.overwrites_input = output, other, overwrites_input
        super().__init__(self.render(lambda name: name))

    def render(self, show) -> str:
        (out_name, out_path), (other_name, other_path) = self.output, self.other
        if self.overwrites_input:
            return (
                f"{show(out_name)} {out_path} is the same file as {show(other_name)} "
                f"{other_path}; writing it would destroy the input, so choose another "
                "output name"
            )
        return (
            f"{show(out_name)} {out_path} and {show(other_name)} {other_path} are the same "
            "file; give each output its own name"
        )
