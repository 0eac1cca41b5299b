"""Click commands only: parse, validate, call the library, add the flag to its errors."""

from livesegment.cli.main import main

__all__ = ["main"]
