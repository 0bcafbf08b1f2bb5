#!/usr/bin/env bash
# Training on a Slurm cluster: one task per GPU, srun starts them all.
#
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#       bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py args]
#
# MMEngine's slurm launcher reads the rank and world size from srun and the
# master address from `scontrol show hostname`; MASTER_PORT (29500) can be
# set. PYTHON as in dist_train.sh.
#
# Pre-emption and time limits (docs/reliability.md): srun asks Slurm for
# SIGUSR1 SIGNAL_TIME (120) seconds before the time limit; on SIGUSR1 or
# SIGTERM (from Slurm, or sent to this script, which passes it on to srun)
# training saves a checkpoint after the current iteration, and this script
# exits with status 75 and, inside a batch job (SLURM_JOB_ID set) with
# REQUEUE=1 (the default), requeues the job (`scontrol requeue`): submit it
# with `sbatch --requeue` and pass --resume, so that the requeued job
# continues from that checkpoint. The tasks themselves exit with 0 (so that
# srun's --kill-on-bad-exit does not cut the others short) after writing
# the stop line to SCTNET_STOP_FILE, a temporary name in STOP_DIR (default:
# the repository, which every node of the job sees; set STOP_DIR to another
# shared, writable folder if it is read-only).
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: bash $0 PARTITION JOB_NAME CONFIG [tools/train.py args]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
shift 3
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(( GPUS < 8 ? GPUS : 8 ))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-}
SIGNAL_TIME=${SIGNAL_TIME:-120}
REQUEUE=${REQUEUE:-1}
# shellcheck source=tools/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
# in a folder every node sees (the repository, whose tools/ every task
# runs): the ranks write it when a signal stops them
stop_file "${STOP_DIR:-$ROOT}"

# shellcheck disable=SC2086
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    --signal=USR1@"$SIGNAL_TIME" \
    $SRUN_ARGS \
    "$PYTHON" -u "$TOOLS/train.py" "$CONFIG" --launcher slurm "$@" &
SRUN=$!
# srun passes these signals on to its tasks
trap 'kill -s TERM "$SRUN" 2>/dev/null || true' TERM
trap 'kill -s USR1 "$SRUN" 2>/dev/null || true' USR1

wait_launcher "$SRUN"
status=$STATUS
if [ "$status" -eq 75 ] && [ "$REQUEUE" = 1 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
    echo "slurm_train.sh: training stopped with a checkpoint; requeueing" \
        "job $SLURM_JOB_ID (REQUEUE=0 to leave it)" >&2
    scontrol requeue "$SLURM_JOB_ID" || true
fi
exit "$status"
