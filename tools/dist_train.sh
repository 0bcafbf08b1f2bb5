#!/usr/bin/env bash
# Distributed training with torchrun, one process per GPU (per CPU slot
# without CUDA: tools/train.py then switches to gloo and BN).
#
#   bash tools/dist_train.sh CONFIG GPUS [tools/train.py args]
#   # two nodes, run on each with its NODE_RANK:
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 \
#       bash tools/dist_train.sh CONFIG 8 --work-dir work_dirs/x
#
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1),
# MASTER_PORT or PORT (29500), PYTHON (the repository's .venv when it
# exists, else python).
#
# Pre-emption: on SIGTERM or SIGUSR1 (to this script, which passes it on to
# the training processes, or to any of them) training saves a checkpoint
# after the current iteration and this script exits with status 75
# (continue with the same command and --resume). The ranks write the stop
# line to SCTNET_STOP_FILE (a temporary file named here) and exit with 0,
# so that torchrun does not report a failure. docs/reliability.md
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: bash $0 CONFIG GPUS [tools/train.py args]" >&2
    exit 2
fi
CONFIG=$1
GPUS=$2
shift 2
# shellcheck source=tools/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-${PORT:-29500}}

# the ranks of this node write it when a signal stops them
stop_file "${TMPDIR:-/tmp}"

"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$MASTER_PORT" \
    --nproc_per_node="$GPUS" \
    "$TOOLS/train.py" "$CONFIG" --launcher pytorch "$@" &
LAUNCHER=$!

# the signal goes to the training processes themselves (torchrun's own
# SIGTERM handling would kill them 30 s later, and SIGUSR1 would end it)
forward() {
    local workers
    workers=$(ps -o pid= --ppid "$LAUNCHER" 2>/dev/null || true)
    if [ -n "$workers" ]; then
        # shellcheck disable=SC2086
        kill -s "$1" $workers 2>/dev/null || true
    else
        kill -s TERM "$LAUNCHER" 2>/dev/null || true
    fi
}
trap 'forward TERM' TERM
trap 'forward USR1' USR1

wait_launcher "$LAUNCHER"
exit "$STATUS"
