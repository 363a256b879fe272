#!/usr/bin/env bash
# dtctl end to end against the suite's nats-server (DT_TEST_NATS_URL): hub create/info/delete,
# start, status (text and --json), signals, waits, exit codes of the error cases, help, version,
# global options after the command, the JSON check of inputs, a reader that closes the pipe.
#   test_dtctl.sh /path/to/dtctl
set -uo pipefail

dtctl="${1:?usage: test_dtctl.sh DTCTL}"
if [ -z "${DT_TEST_NATS_URL:-}" ]; then
  echo "DT_TEST_NATS_URL is not set: run the integration tests through scripts/test" >&2
  exit 1
fi
if ! command -v jq >/dev/null 2>&1; then
  echo "jq is required to check dtctl's JSON output (apt-get install jq)" >&2
  exit 1
fi
export DT_NATS_URL="$DT_TEST_NATS_URL"
export DT_HUB="dtctl_$$_${RANDOM}"
failures=0
tmp="$(mktemp -d "${TMPDIR:-/tmp}/dtctl-test.XXXXXX")"

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# expect CODE CMD...: runs dtctl with the arguments, checks the exit code; stdout in $out.
expect() {
  local want="$1"
  shift
  out="$("$dtctl" "$@" 2>"$tmp/err")"
  local rc=$?
  if [ "$rc" != "$want" ]; then
    fail "dtctl $* exited $rc, want $want; stderr: $(cat "$tmp/err")"
  fi
}

# json_check FILTER: jq -e on $out.
json_check() {
  if ! printf '%s' "$out" | jq -e "$1" >/dev/null; then
    fail "jq '$1' on: $out"
  fi
}

cleanup() {
  "$dtctl" hub delete >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT

# Help and usage.
expect 0 --help
[[ "$out" == usage:* ]] || fail "--help prints usage"
expect 0 start --help
[[ "$out" == *"--reuse"* ]] || fail "start --help describes --reuse"
expect 0 hub --help
expect 1
expect 1 bogus
expect 1 start
expect 1 status a b
expect 1 --json
expect 1 list --limit 0
expect 1 wait x --timeout-ms -5
expect 1 start Orch --reuse sometimes
expect 1 purge
expect 1 hub create --partitions 0
expect 0 --version
[[ "$out" =~ ^dtctl\ [0-9]+\.[0-9]+\.[0-9]+ ]] || fail "--version prints the version: '$out'"
expect 0 --help
[[ "$out" == *"--raw"* ]] || fail "--help documents --raw"

# Hub lifecycle.
expect 2 hub info
expect 0 --json hub create --partitions 3 --storage memory --lease-ttl-ms 5000
json_check '.partitions == 3 and .storage == "memory" and .lease_ttl_ms == 5000'
expect 0 hub create --partitions 3 --storage memory --lease-ttl-ms 5000
expect 3 hub create --partitions 5 --storage memory --lease-ttl-ms 5000
# Each layer names what it did once: no "create hub X: create hub: ..." from client and broker.
[ "$(grep -o 'create hub' "$tmp/err" | wc -l)" = 1 ] || fail "error text repeats: $(cat "$tmp/err")"
expect 0 --json hub info
json_check '.hub == env.DT_HUB and .partitions == 3 and .messages.orchestration == 0'

# Retention: shown (nothing set: keep all), set field by field, refused when negative.
expect 0 --json hub retention
json_check '.completed_ms == 0 and .failed_ms == 0 and .terminated_ms == 0'
expect 0 --json hub retention --completed-ms 86400000
json_check '.completed_ms == 86400000 and .failed_ms == 0'
expect 0 --json hub retention --failed-ms 5000
json_check '.completed_ms == 86400000 and .failed_ms == 5000 and .terminated_ms == 0'
expect 1 hub retention --terminated-ms -1
expect 0 hub retention --completed-ms 0 --failed-ms 0
[[ "$out" == *"completed kept (ms):   0"* ]] || fail "retention prints the policy: '$out'"

# Start and status.
expect 0 start Greeter --id greet-1 --input '{"who":"world \"quoted\""}' --version 1.0
[ "$out" = "greet-1" ] || fail "start prints the instance ID, got '$out'"
expect 0 start Greeter
[[ "$out" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]] ||
  fail "generated ID is a UUID v4: '$out'"
expect 0 --json status greet-1 --payloads
json_check '.instance_id == "greet-1" and .runtime_status == "PENDING" and .name == "Greeter"'
json_check '.input == "{\"who\":\"world \\\"quoted\\\"\"}" and .version == "1.0"'
json_check '(.input | fromjson).who == "world \"quoted\""'
expect 0 --json status greet-1
json_check '.input == null'
# Global options after the command (as the README shows them).
expect 0 status greet-1 --payloads --json
json_check '.instance_id == "greet-1" and .input != null'
expect 0 status --json greet-1
json_check '.instance_id == "greet-1"'
expect 0 status greet-1 --hub="$DT_HUB" --url "$DT_NATS_URL" --request-timeout-ms=3000
expect 1 status greet-1 --request-timeout-ms 0
expect 0 status greet-1
[[ "$out" == *"status:"*"PENDING"* ]] || fail "text status shows PENDING: $out"
expect 2 status nobody
expect 1 status "bad id"
expect 3 start Greeter --id greet-1
expect 0 start Greeter --id greet-1 --reuse ignore --input '"other"' # pending: no effect
[ "$out" = "greet-1" ] || fail "an ignored start prints the instance ID, got '$out'"
expect 3 start Greeter --id greet-1 --reuse replace-if-finished # not finished
printf '{"from":"file"}' >"$tmp/in"
expect 0 --json start Greeter --id greet-2 --input-file "$tmp/in"
json_check '.instance_id == "greet-2"'
expect 0 --json status greet-2 --payloads
json_check '.input == "{\"from\":\"file\"}"'
# Inputs are checked as JSON unless --raw: a usage error, nothing started.
expect 1 start Greeter --id bad-1 --input 'hello world'
[[ "$(cat "$tmp/err")" == *"not valid JSON"* ]] || fail "bad --input names the problem"
printf '{"a":1,}' >"$tmp/bad"
expect 1 start Greeter --id bad-1 --input-file "$tmp/bad"
expect 2 status bad-1
expect 0 start Greeter --id raw-1 --input 'hello world' --raw
expect 0 --json status raw-1 --payloads
json_check '.input == "hello world"'

# Signals.
expect 2 raise nobody Approval
expect 0 raise greet-1 Approval --data '{"ok":true}'
expect 1 raise greet-1 Approval --data '{ok:true}'
[[ "$(cat "$tmp/err")" == *"--data is not valid JSON"* ]] || fail "bad --data names the problem"
expect 1 raise greet-1 Approval --data ''
expect 0 raise greet-1 Approval --data 'plain text' --raw
expect 0 --json raise greet-1 Approval --key once
json_check '.ok and .action == "raise"'
expect 1 raise greet-1 'bad.name'
expect 0 suspend greet-1 --reason maintenance
expect 0 resume greet-1
# Rewind: only a failed instance (test_rewind runs one); refusals send nothing.
expect 2 rewind nobody
expect 3 rewind greet-1 --reason again
[[ "$(cat "$tmp/err")" == *"only a failed instance can be rewound"* ]] || fail "rewind refusal"
expect 3 --json rewind greet-1
jq -e '.error.status == "ESTATE"' "$tmp/err" >/dev/null || fail "rewind JSON error"
expect 0 terminate greet-1 --reason done --recursive
expect 0 --json hub info
# 4 starts, 3 raises, suspend, resume, terminate: the refused inputs sent nothing.
json_check '.messages.orchestration == 10'

# A reader that closes the pipe early is not an error (no message, exit 0): the output of a
# 300 KB payload outgrows the pipe's buffer, so dtctl writes after head has gone.
printf '"%s"' "$(head -c 300000 /dev/zero | tr '\0' a)" >"$tmp/big"
expect 0 start Greeter --id big-1 --input-file "$tmp/big"
"$dtctl" status big-1 --payloads 2>"$tmp/err" | head -c 10 >/dev/null
rcs=("${PIPESTATUS[@]}")
[ "${rcs[0]}" = 0 ] || fail "dtctl into a closed pipe exited ${rcs[0]}, want 0"
[ ! -s "$tmp/err" ] || fail "dtctl into a closed pipe printed: $(cat "$tmp/err")"

# Waits time out while no worker runs.
expect 4 wait greet-1 --timeout-ms 200
expect 4 wait greet-1 --start --timeout-ms 0
expect 2 wait nobody --timeout-ms 100

# Queries need workers: a clear error naming the partition.
"$dtctl" list >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" = 5 ] || fail "list without workers exits 5, got $rc"
grep -q "partition 0 has no running worker" "$tmp/err" || fail "list error names partition"
"$dtctl" --json history greet-1 >/dev/null 2>"$tmp/err"
jq -e '.error.status == "EBUSY" and .error.exit_code == 5' "$tmp/err" >/dev/null ||
  fail "JSON error object: $(cat "$tmp/err")"

# Delete.
expect 0 --json hub delete
json_check '.deleted'
expect 2 hub delete
expect 2 start Greeter

if [ "$failures" -ne 0 ]; then
  echo "$failures failures" >&2
  exit 1
fi
echo "test_dtctl: all passed"
