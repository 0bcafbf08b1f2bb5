# Sourced by the launcher scripts of tools/ (not run on its own):
#   source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
# sets TOOLS and ROOT (this checkout) and PYTHON (as given, else the
# repository's .venv when no virtual environment is active, else python),
# and defines the stop-file handling of pre-emptible training.

TOOLS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$TOOLS")"
if [ -z "${PYTHON:-}" ]; then
    if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$ROOT/.venv/bin/python" ]; then
        PYTHON="$ROOT/.venv/bin/python"
    else
        PYTHON=python
    fi
fi

# stop_file DIR: export SCTNET_STOP_FILE, a fresh name in DIR that the
# training ranks write (atomically) when a signal stopped them; removed on
# exit
stop_file() {
    STOP_FILE=$(mktemp -u "$1/.sctnet-stop.XXXXXXXX")
    # shellcheck disable=SC2064
    trap "rm -f '$STOP_FILE'" EXIT
    export SCTNET_STOP_FILE=$STOP_FILE
}

# wait_launcher PID: wait for the launcher (again after every trapped
# signal) and set STATUS: 75 when the ranks stopped on a signal with a
# checkpoint (the stop file exists), else the launcher's exit status
wait_launcher() {
    STATUS=0
    while :; do
        wait "$1" && STATUS=0 || STATUS=$?
        kill -0 "$1" 2>/dev/null || break   # else: a trapped signal
    done
    if [ -s "$STOP_FILE" ]; then
        STATUS=75
    fi
}
