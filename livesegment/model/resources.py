"""Where the data shipped with livesegment is: the bundled models and the sample video.

The repository keeps each file once, in the top-level ``models/`` and ``sample_videos/``
folders. The wheel carries them as package data (``livesegment/bundled_models`` and
``livesegment/bundled_samples``, mapped by ``force-include`` in pyproject.toml), because an
installed package has no repository beside it. A clone's editable install has no such folders
inside the package, so it finds the top-level ones.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

CHECKOUT_ROOT = Path(__file__).resolve().parents[2]


def data_dir(packaged: str, checkout: str) -> Path:
    """The folder ``livesegment/<packaged>`` when installed, else ``<checkout>`` in the clone.

    Args:
        packaged: folder name inside the installed package.
        checkout: folder name at the top of the repository.
    """
    shipped = importlib.resources.files("livesegment") / packaged
    # Only a folder on disk will do: h5py and OpenCV open paths, not zip members.
    if isinstance(shipped, Path) and shipped.is_dir():
        return shipped
    return CHECKOUT_ROOT / checkout
