"""The browser view of a run (``livesegment run SOURCE --serve PORT``): the live annotated
video, the HUD's figures, the detections and the window's controls, on one page.

``view.WebView`` is the sink the run opens; ``app`` holds the routes, ``hub`` the newest
frame shared by viewers, ``security`` the address, token and Origin rules.
"""

from livesegment.serve.security import ServeAddress, serve_token

__all__ = ["ServeAddress", "serve_token"]
