#!/usr/bin/env bash
# The collector's memory while it indexes a backlog into the embedded index: one agent
# ships a file of realistic Apache access lines that is already complete when it
# starts (as after an outage), with every default setting. Prints how long indexing
# took and the collector's peak resident and anonymous memory.
#
#   bench/backlog.sh [BYTES]          (default 320000000)
#
# COLLECTOR and AGENT name other binaries to measure (default: built here, release and
# agent-release profiles). Everything listens on 127.0.0.1, on ports the collector
# picks; the work directory is removed at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bytes=${1:-320000000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/garonne-target}"
if [ -z "${COLLECTOR:-}" ] || [ -z "${AGENT:-}" ]; then
    (cd "$root" && cargo build --quiet --release -p garonne-collector &&
        cargo build --quiet --profile agent-release -p garonne-agent)
fi
collector_bin=${COLLECTOR:-$CARGO_TARGET_DIR/release/garonne-collector}
agent_bin=${AGENT:-$CARGO_TARGET_DIR/agent-release/garonne-agent}

work=$(mktemp -d /var/tmp/garonne-backlog.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

sample="$root/../shared/data/apache-access/apache_logs"
python3 "$root/bench/make_input.py" --sample "$sample" --bytes "$bytes" \
    --out "$work/input.log" >/dev/null
lines=$(wc -l < "$work/input.log")
"$collector_bin" certs init --dir "$work/certs" --name localhost >/dev/null
mkdir -p "$work/watch"
cat > "$work/collector.toml" <<EOF
[collector]
listen = "127.0.0.1:0"
data_dir = "$work/collector"
cert = "$work/certs/collector.pem"
key = "$work/certs/collector.key"
client_ca = "$work/certs/ca.pem"

[api]
listen = "127.0.0.1:0"
EOF
"$collector_bin" run --config "$work/collector.toml" 2> "$work/collector.log" &
collector=$!
pids+=("$collector")
for _ in $(seq 300); do
    grep -q "api listening" "$work/collector.log" && break
    sleep 0.1
done
port=$(grep -o 'collector listening listen=127.0.0.1:[0-9]*' "$work/collector.log" | cut -d: -f2)
api=$(grep -o 'api listening listen=127.0.0.1:[0-9]*' "$work/collector.log" | cut -d: -f2)
cat > "$work/agent.toml" <<EOF
[agent]
id = "backlog"
data_dir = "$work/agent"

[[input]]
paths = ["$work/watch/*.log"]
module = "apache.access"

[collector]
addresses = ["127.0.0.1:$port"]
server_name = "localhost"
ca = "$work/certs/ca.pem"
cert = "$work/certs/agent.pem"
key = "$work/certs/agent.key"
EOF

peak_anon=0
peak_rss=0
sample_memory() {
    local anon rss
    anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$collector/status")
    rss=$(awk '/^VmHWM:/ {print $2}' "/proc/$collector/status")
    [ "$anon" -gt "$peak_anon" ] && peak_anon=$anon
    peak_rss=$rss
}
created() {
    curl -s "http://127.0.0.1:$api/metrics" |
        awk '/^garonne_collector_documents_created_total/ {print $2}'
}

cp "$work/input.log" "$work/watch/access.log"
start=$(date +%s.%N)
"$agent_bin" run --config "$work/agent.toml" 2> "$work/agent.log" &
pids+=("$!")
while [ "$(created)" != "$lines" ]; do
    sample_memory
    sleep 0.5
done
end=$(date +%s.%N)
sample_memory
seconds=$(echo "$end - $start" | bc)
echo "lines indexed:            $lines"
echo "seconds:                  $seconds"
echo "lines per second:         $(echo "$lines / $seconds" | bc)"
echo "collector peak RSS:       $((peak_rss / 1024)) MiB"
echo "collector peak anonymous: $((peak_anon / 1024)) MiB (sampled every 0.5 s)"
