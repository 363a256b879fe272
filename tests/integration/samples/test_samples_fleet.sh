#!/usr/bin/env bash
# The sample programs end to end, as scripts/run uses them: two dt-samples-worker processes share
# a data directory and a fresh hub on the nats-server of scripts/test (DT_TEST_NATS_URL);
# dt-samples runs every sample and a small burst; the workers stop cleanly on SIGTERM.
#   test_samples_fleet.sh DT_SAMPLES_WORKER DT_SAMPLES DTCTL
set -euo pipefail
worker="$1" runner="$2" dtctl="$3"
: "${DT_TEST_NATS_URL:?run the tests through scripts/test}"
export DT_NATS_URL="$DT_TEST_NATS_URL" DT_HUB="fleet_$$_$RANDOM"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/dt-fleet.XXXXXX")"
pids=()
cleanup() {
  if [ "${#pids[@]}" -gt 0 ]; then kill -KILL "${pids[@]}" 2>/dev/null || true; fi
  "$dtctl" hub delete >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$tmp"/*.log; do echo "== $f" >&2; cat "$f" >&2; done; exit 1; }

"$dtctl" hub create --lease-ttl-ms 3000 >/dev/null
for i in 1 2; do
  "$worker" --data "$tmp/data" >"$tmp/worker-$i.log" 2>&1 &
  pids+=($!)
done
for i in 1 2; do
  for _ in $(seq 1 200); do grep -q ': ready:' "$tmp/worker-$i.log" && break; sleep 0.1; done
  grep -q ': ready:' "$tmp/worker-$i.log" || fail "worker $i did not start"
done

"$runner" --list | grep -q '^saga ' || fail "dt-samples --list"
if ! "$runner" --burst 50 --width 20 >"$tmp/runner.log" 2>&1; then fail "dt-samples exited $?"; fi
grep -q '^samples: 9 run, 9 as expected, 24 instances' "$tmp/runner.log" || fail "summary line"
grep -q '^throughput: 50 of 50 completed' "$tmp/runner.log" || fail "throughput line"
[ "$(grep -c '^  ok$' "$tmp/runner.log")" -eq 9 ] || fail "9 ok lines"
grep -q 'on signup.results.welcome-' "$tmp/runner.log" || fail "event-driven result"

# One sample alone, and a bad argument.
"$runner" saga >"$tmp/one.log" 2>&1 || fail "dt-samples saga"
grep -q '^samples: 1 run, 1 as expected, 2 instances' "$tmp/one.log" || fail "saga alone"
rc=0; "$runner" nosuch >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "unknown sample: exit $rc, want 2"

# The instances are visible to dtctl, and each worker ran some of the work.
"$dtctl" --json list | grep -q '"instance_id":"saga-' || fail "dtctl list"

# SIGTERM: both stop gracefully, exit 0.
kill -TERM "${pids[@]}"
for pid in "${pids[@]}"; do
  rc=0; wait "$pid" || rc=$?
  [ "$rc" -eq 0 ] || fail "worker $pid exited $rc after SIGTERM"
done
pids=()
grep -q 'SIGTERM: stopping' "$tmp/worker-1.log" || fail "worker 1 did not report stopping"
echo "ok"
