#!/usr/bin/env bash
# A ready check of a CUDA machine, in one command (docs/speed.md):
#
#   bash tools/gpu_check.sh [--out-dir DIR] [--types T,...] [--train-iters N]
#                           [--skip speed,train,dist,tensorrt]
#
# the official speed protocol (fp32 and --fp16, SCTNet-S and -B at their
# official sizes), SCTNet-S + SIAM training at the official crop and batch
# (fp32 and --amp), two processes with SyncBN when two GPUs are visible,
# ONNX -> TensorRT fp16 when trtexec or the tensorrt package is installed;
# one markdown table at the end (also DIR/<date>-<time>/gpu_check.md).
# Refused with one error line when no CUDA device is visible. PYTHON as in
# dist_train.sh. The work: speed/gpu_check.py,
# mmseg_sctnet/benchmark/gpu_check.py.
set -euo pipefail
# shellcheck source=tools/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
exec "$PYTHON" "$ROOT/speed/gpu_check.py" "$@"
