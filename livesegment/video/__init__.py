"""Frames in and out: sources (files, images, cameras, streams), the capture thread, decoding
and encoding with PyAV, display rotation and EXIF orientation."""
