#!/usr/bin/env bash
# The speed benchmark on a CUDA machine, for when one is available (not part of CI).
#
#   bash benchmarks/gpu.sh                 # from a clone; about 10 minutes with downloads
#   bash benchmarks/gpu.sh --rounds 3      # extra arguments go to benchmarks/speed.py
#
# Needs an NVIDIA driver (nvidia-smi works) and Python 3.10-3.13; installs uv if missing.
# TensorFlow's CUDA and cuDNN libraries come as pip packages (tensorflow[and-cuda]), so no
# system CUDA toolkit is needed. Writes out/speed-gpu.json and prints the same table as on CPU.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; then
    echo "no NVIDIA GPU found (nvidia-smi failed); run benchmarks/speed.py on CPU instead" >&2
    exit 1
fi
command -v uv >/dev/null || python3 -m pip install --quiet uv

uv sync --quiet
# The project pins tensorflow==2.21.*; add the CUDA libraries of that same version.
TF_VERSION=$(uv run --no-sync python -c "import importlib.metadata as m; print(m.version('tensorflow'))")
uv pip install --quiet "tensorflow[and-cuda]==${TF_VERSION}"

# Every process (the benchmark and the start-up runs it starts) takes GPU memory as it needs it,
# instead of the first one taking all of it.
export TF_FORCE_GPU_ALLOW_GROWTH=true
uv run --no-sync python - <<'EOF'
import os
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import tensorflow as tf
gpus = tf.config.list_physical_devices("GPU")
if not gpus:
    raise SystemExit("TensorFlow sees no GPU: check the driver against TensorFlow's CUDA version")
print("TensorFlow", tf.__version__, "GPUs:", [gpu.name for gpu in gpus])
EOF

# The COCO-shaped part needs OpenCV's vtest.avi (pedestrians, 768x576); fetch it if the
# shared copy is absent.
VTEST=../shared/data/vtest.avi
if [ ! -f "$VTEST" ]; then
    mkdir -p out
    VTEST=out/vtest.avi
    [ -f "$VTEST" ] || curl -fsSL -o "$VTEST" \
        https://raw.githubusercontent.com/opencv/opencv/4.x/samples/data/vtest.avi
fi

uv run --no-sync python benchmarks/speed.py --vtest "$VTEST" --frames 20 --shapes-frames 90 \
    --rounds 3 --out out/speed-gpu.json "$@"
