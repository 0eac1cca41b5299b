"""Time from the command to the first processed frame, livesegment against PixelLib.

Each tool runs as a user runs it, in a fresh process, on a one-frame clip, so the time to exit
is the time to the first frame plus closing its outputs. Runs alternate between the tools.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np

log = logging.getLogger("benchmarks.startup")

HERE = Path(__file__).resolve().parent


# A child's ru_maxrss starts at its parent's RSS when it is forked, and this benchmark's process
# holds several models: each command is therefore started by a small Python process of its own,
# which times it and reports its true peak.
_MEASURE = """
import os, subprocess, sys, time
started = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(time.perf_counter() - started, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status))
"""


def _timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command, which must succeed."""
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command], capture_output=True, text=True, check=False
    )
    fields = measured.stdout.split()
    elapsed, peak_mb, returncode = fields if len(fields) == 3 else (0, 0, measured.returncode)
    if int(returncode) != 0 or len(fields) != 3:
        raise RuntimeError(
            f"{' '.join(command)} failed ({returncode}): "
            f"{measured.stderr.strip().splitlines()[-1:]}"
        )
    return float(elapsed), float(peak_mb)


def commands(weights: Path, clip: Path, folder: Path, pixellib: bool) -> dict[str, list[str]]:
    livesegment = [
        str(Path(sys.executable).with_name("livesegment")),
        "run",
        str(clip),
        "--model",
        str(weights),
        "--no-display",
        "--threshold",
        "0.7",
        "--json",
        str(folder / "startup.jsonl"),
        "--output",
        str(folder / "startup.mp4"),
    ]
    runs = {
        "livesegment run (default preset, balanced)": livesegment,
        "livesegment run --speed accurate": [*livesegment, "--speed", "accurate"],
    }
    if pixellib:
        runs["PixelLib process_video (1024 px)"] = [
            sys.executable,
            str(HERE / "pixellib_loop.py"),
            str(weights),
            str(clip),
            str(folder / "startup-pixellib.avi"),
        ]
    return runs


def compare(weights: Path, clip: Path, folder: Path, rounds: int, pixellib: bool) -> dict:
    runs = commands(weights, clip, folder, pixellib)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    names = list(runs)
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(_timed(runs[name]))
            log.info("start-up round %d, %s: %.1f s", round_index + 1, name, samples[name][-1][0])
    summary = {
        name: {
            "s": round(float(np.median([s for s, _ in rows])), 2),
            "peak_rss_mb": round(float(max(m for _, m in rows)), 0),
        }
        for name, rows in samples.items()
    }
    pixellib_name = next((name for name in names if name.startswith("PixelLib")), None)
    ratios = {}
    if pixellib_name:
        for name in names:
            if name != pixellib_name:
                per_round = [
                    p[0] / s[0] for s, p in zip(samples[name], samples[pixellib_name], strict=True)
                ]
                ratios[f"{name} vs PixelLib (PixelLib s / livesegment s)"] = round(
                    float(np.median(per_round)), 3
                )
    return {
        "commands": runs,
        "samples_s": {n: [s for s, _ in r] for n, r in samples.items()},
        "summary": summary,
        "ratios": ratios,
    }
