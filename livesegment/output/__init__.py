"""Where results go: drawing (``overlay``) and sinks that share one interface,
``write(result, picture)`` and ``close()`` (JSON Lines, the window, recordings)."""
