"""TensorFlow process settings that must be in force before TensorFlow is first imported."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator


def ensure_legacy_keras() -> None:
    """Select tf-keras (Keras 2), which PixelLib's Mask R-CNN is written for.

    Raises:
        RuntimeError: TensorFlow was already imported without the switch, so Keras 3 is bound.
    """
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        if "tensorflow" in sys.modules:
            raise RuntimeError(
                "TensorFlow was imported before livesegment could set TF_USE_LEGACY_KERAS=1; "
                "load a livesegment model before importing TensorFlow, or export "
                "TF_USE_LEGACY_KERAS=1"
            )
        os.environ["TF_USE_LEGACY_KERAS"] = "1"


def quiet_tensorflow(verbose: bool = False) -> None:
    """Keep TensorFlow's C++ and Python log lines off the user's terminal unless ``verbose``."""
    if verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # oneDNN's kernels stay on (TF_ENABLE_ONEDNN_OPTS unset): they make the COCO-sized network
    # 10-19% faster on CPU. Their "oneDNN custom operations are on" line goes to fd 2 while
    # TensorFlow imports, which ``importing_tensorflow`` silences.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("h5py").setLevel(logging.ERROR)
    # PixelLib and TF emit Deprecation/UserWarnings on import that mean nothing to a user.
    warnings.filterwarnings("ignore", module=r"(tensorflow|tf_keras|keras|pixellib|absl)(\..*)?")


def tensorflow_logging_on() -> bool:
    """Whether the user asked for TensorFlow's own output (``--verbose`` or the variable)."""
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0"


def quiet_opencv(verbose: bool = False) -> None:
    """OpenCV prints probe warnings (missing cameras, backends) that are not the user's problem."""
    # FFmpeg's own messages ("Stream ends prematurely") bypass OpenCV's logger.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "32" if verbose else "-8")
    import cv2

    level = cv2.utils.logging.LOG_LEVEL_INFO if verbose else cv2.utils.logging.LOG_LEVEL_SILENT
    cv2.utils.logging.setLogLevel(level)


@contextlib.contextmanager
def silenced_stderr(enabled: bool = True) -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the block.

    TensorFlow's C++ core writes straight to fd 2 (absl's "All log messages before
    absl::InitializeLog()" and CUDA probing lines), bypassing Python's logging and
    TF_CPP_MIN_LOG_LEVEL, so only a descriptor-level redirect keeps it off the terminal.
    """
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def importing_tensorflow() -> Iterator[None]:
    """Import TensorFlow (or PixelLib) inside this block: tf-keras selected, and TensorFlow's
    import lines kept off the terminal unless its logging is on (TF_CPP_MIN_LOG_LEVEL=0, set
    by ``livesegment --verbose`` or by the user)."""
    ensure_legacy_keras()
    quiet_tensorflow(verbose=logging.getLogger("livesegment").isEnabledFor(logging.DEBUG))
    with silenced_stderr(not tensorflow_logging_on()):
        yield
