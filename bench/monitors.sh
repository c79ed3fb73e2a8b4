#!/usr/bin/env bash
# Cost of availability monitors: runs the release collector with MONITORS HTTP monitors
# (default 1,000) at INTERVAL seconds (default 20) against a local web server, and
# reports the collector's CPU (percent of one core) and memory over MEASURE seconds,
# after WARMUP seconds in which the start-up jitter spreads the first checks.
#
#   bench/monitors.sh                 # 1,000 monitors, check documents discarded
#   SINK=index bench/monitors.sh      # same, documents kept in the embedded index
#   MONITORS=0 bench/monitors.sh      # the idle collector, for comparison
#
# Everything listens on 127.0.0.1 on ports chosen at run time; the web server is
# Python's http.server (its own CPU is not counted).
set -euo pipefail

MONITORS=${MONITORS:-1000}
INTERVAL=${INTERVAL:-20}
WARMUP=${WARMUP:-30}
MEASURE=${MEASURE:-120}
SINK=${SINK:-discard}

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-/var/tmp/garonne-target}
(cd "$root" && cargo build --release -q -p garonne-collector)
collector="$target/release/garonne-collector"

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The monitored site.
mkdir -p "$work/site"
echo "school portal ok" > "$work/site/index.html"
site_port=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$work/site" "$site_port" \
    2> "$work/site.log" > /dev/null &
pids+=($!)

# The collector's configuration: QUIC and API on loopback, one monitor per page.
"$collector" certs init --dir "$work/certs" --name 127.0.0.1 > /dev/null
api_port=$(free_port)
quic_port=$(free_port)
{
    cat <<TOML
[collector]
listen = "127.0.0.1:$quic_port"
data_dir = "$work/data"
cert = "$work/certs/collector.pem"
key = "$work/certs/collector.key"
client_ca = "$work/certs/ca.pem"
sink = "$( [ "$SINK" = index ] && echo index || echo discard )"

[api]
listen = "127.0.0.1:$api_port"
TOML
    for i in $(seq 1 "$MONITORS"); do
        cat <<TOML

[[monitor]]
name = "site-$i"
type = "http"
url = "http://127.0.0.1:$site_port/index.html?monitor=$i"
interval = $INTERVAL
timeout = 5
keyword = "portal ok"
TOML
    done
} > "$work/collector.toml"

RUST_LOG=warn "$collector" run --config "$work/collector.toml" 2> "$work/collector.log" &
collector_pid=$!
pids+=("$collector_pid")

# Ready when the API answers.
for _ in $(seq 1 100); do
    if curl -sf "http://127.0.0.1:$api_port/api/v1/health" > /dev/null; then break; fi
    sleep 0.1
done
curl -sf "http://127.0.0.1:$api_port/api/v1/health" > /dev/null || {
    echo "collector did not start:" >&2
    cat "$work/collector.log" >&2
    exit 1
}

sleep "$WARMUP"
ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$collector_pid/stat"; }
requests() { wc -l < "$work/site.log"; }
start_cpu=$(cpu_ticks)
start_requests=$(requests)
start_time=$(date +%s.%N)
sleep "$MEASURE"
end_cpu=$(cpu_ticks)
end_requests=$(requests)
end_time=$(date +%s.%N)

rss=$(awk '/VmRSS/ {print $2}' "/proc/$collector_pid/status")
peak=$(awk '/VmHWM/ {print $2}' "/proc/$collector_pid/status")
python3 - "$start_cpu" "$end_cpu" "$ticks" "$start_time" "$end_time" \
    "$start_requests" "$end_requests" "$rss" "$peak" "$MONITORS" "$INTERVAL" "$SINK" <<'PY'
import sys
(c0, c1, ticks, t0, t1, r0, r1, rss, peak) = map(float, sys.argv[1:10])
monitors, interval, sink = sys.argv[10], sys.argv[11], sys.argv[12]
elapsed = t1 - t0
cpu = (c1 - c0) / ticks / elapsed * 100
rate = (r1 - r0) / elapsed
print(f"monitors={monitors} interval={interval}s sink={sink} window={elapsed:.0f}s")
print(f"checks/s={rate:.1f} (expected {int(monitors) / int(interval):.1f})")
print(f"cpu={cpu:.2f}% of one core")
print(f"rss={rss / 1024:.1f} MiB peak={peak / 1024:.1f} MiB")
PY
