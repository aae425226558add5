#!/usr/bin/env bash
# One short GPU training (configs/paper_gpu.flags, <= 9 minutes) that leaves its results in $OUT:
# the exported generator (generator.weights.h5 + generator.json), validation_log.csv and train.log.
#
#   OUT=/tmp/gpu_out bash scripts/gpu_train.sh [EXTRA_TRAIN_FLAGS...]
#
# Data: $GPU_TRAIN_DATA (a folder or glob of training PNGs, e.g. an ignored folder carried with the
# repo) and $GPU_VAL_DATA; without them the scikit-image samples (so it runs anywhere). Needs a
# Python with this package's [train] extra and a CUDA build of TensorFlow; `PYTHON=... bash ...`
# picks it. On a CPU it still runs (mixed_float16 and XLA exercised), just slowly:
#   OUT=/tmp/x bash scripts/gpu_train.sh --epochs=1 --steps_per_epoch=2 --max_train_minutes=1 \
#       --filters=8 --num_res_units=1 --batch_size=2 --disc_base_filters=4 --disc_dense_units=8
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder for the results}"
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
"$PYTHON" -c "import tensorflow as tf; print('GPUs:', tf.config.list_physical_devices('GPU'))" | tee "$OUT/train.log"
LOGDIR=$(mktemp -d)
set +e
"$PYTHON" train.py --flagfile=configs/paper_gpu.flags \
    --data="${GPU_TRAIN_DATA:-skimage}" --val_data="${GPU_VAL_DATA:-skimage}" \
    --logdir="$LOGDIR" --export_dir="$OUT/export" --progress=false "$@" 2>&1 | tee -a "$OUT/train.log"
status=${PIPESTATUS[0]}
set -e
cp "$LOGDIR/validation_log.csv" "$OUT/" 2>/dev/null || true
echo "exit status $status; last validation:" | tee -a "$OUT/train.log"
tail -n 1 "$OUT/validation_log.csv" 2>/dev/null | tee -a "$OUT/train.log" || true
exit "$status"
