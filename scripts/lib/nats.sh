# Shell helpers to run a private nats-server with JetStream on a free loopback port.
# Source this file; it defines dt_nats_start DIR [PORT] and dt_nats_stop.

# dt_nats_start DIR [PORT]: starts nats-server -js with its store under DIR on PORT (default: a
# port the kernel picks, read back from the server's log), waits until it accepts connections,
# and exports DT_NATS_PORT, DT_NATS_URL and DT_NATS_PID. The HTTP monitoring endpoint (/jsz, which
# KEDA's nats-jetstream scaler reads) listens on another free loopback port, exported as
# DT_NATS_MONITOR_URL (http://127.0.0.1:<port>).
dt_nats_start() {
  local dir="$1" port="${2:--1}" log i
  mkdir -p "$dir"
  log="$dir/nats-server.log"
  : >"$log"
  nats-server -js -a 127.0.0.1 -p "$port" -m -1 -sd "$dir/js" -l "$log" &
  DT_NATS_PID=$!
  for i in $(seq 1 200); do
    if grep -q "Server is ready" "$log" 2>/dev/null; then
      port=$(sed -n 's/.*Listening for client connections on 127.0.0.1:\([0-9]*\).*/\1/p' "$log" | tail -n 1)
      export DT_NATS_PORT="$port" DT_NATS_URL="nats://127.0.0.1:$port" DT_NATS_PID
      DT_NATS_MONITOR_URL="http://$(sed -n 's/.*Starting http monitor on \([0-9.]*:[0-9]*\).*/\1/p' "$log" | tail -n 1)"
      export DT_NATS_MONITOR_URL
      return 0
    fi
    if ! kill -0 "$DT_NATS_PID" 2>/dev/null; then break; fi
    sleep 0.05
  done
  echo "could not start nats-server; log:" >&2
  cat "$log" >&2
  dt_nats_stop
  return 1
}

dt_nats_stop() {
  if [ -n "${DT_NATS_PID:-}" ]; then
    kill "$DT_NATS_PID" 2>/dev/null || true
    wait "$DT_NATS_PID" 2>/dev/null || true
    unset DT_NATS_PID
  fi
}
