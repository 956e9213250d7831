#!/usr/bin/env bash
# The test suite on a busy machine: one core kept busy the whole time, as when another suite or a
# build runs beside it. The suite must pass so; `make stress` runs it after the same set-up as
# `make test`.
#
#   tests/stress.sh                                    the whole suite, as `make test` runs it
#   tests/stress.sh tests/faults/test_worker_killed.py  a part of it (any pytest arguments)
#
# The load is Debian's stress-ng (`stress-ng --cpu 1`, installed by `make system-deps`), or a
# Python busy loop where stress-ng is missing. STRESS_CPUS (1) sets how many cores are kept busy.
# With arguments, pytest runs them in one process; without, like `make test` (TEST_WORKERS xdist
# processes, a file in one of them, TEST_TIMEOUT as the default per-test limit).
set -euo pipefail

cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CPUS=${STRESS_CPUS:-1}
TEST_WORKERS=${TEST_WORKERS:-3}
TEST_TIMEOUT=${TEST_TIMEOUT:-300}

if [ ! -x "$PY" ]; then
	echo "no $PY: run \`make install\` first (or \`make stress\`)" >&2
	exit 2
fi

if command -v stress-ng >/dev/null 2>&1; then
	load="stress-ng --cpu $CPUS"
	stress-ng --cpu "$CPUS" --quiet &
else
	load="a Python busy loop on $CPUS core(s) (stress-ng is not installed)"
	"$PY" -c '
import multiprocessing, sys
def spin():
    while True:
        pass
procs = [multiprocessing.Process(target=spin, daemon=True) for _ in range(int(sys.argv[1]))]
for p in procs:
    p.start()
for p in procs:
    p.join()
' "$CPUS" &
fi
busy=$!
# the load stops with the script, however it ends (its busy-loop children are in its process group
# only when started from a terminal, so they are ended through their parent)
stop_load() {
	pkill -P "$busy" 2>/dev/null || true
	kill "$busy" 2>/dev/null || true
	wait "$busy" 2>/dev/null || true
}
trap stop_load EXIT INT TERM

echo "== the test suite with one core busy: $load"
started=$(date +%s)
status=0
if [ $# -gt 0 ]; then
	"$PY" -m pytest -q --durations=15 --timeout="$TEST_TIMEOUT" -p no:cacheprovider "$@" || status=$?
else
	"$PY" -m pytest -q --durations=15 --timeout="$TEST_TIMEOUT" -n "$TEST_WORKERS" --dist loadfile --no-loadscope-reorder --max-worker-restart=0 || status=$?
fi
echo "== with $load: pytest exited $status after $(( $(date +%s) - started )) s"
exit $status
