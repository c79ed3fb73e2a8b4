#!/usr/bin/env bash
# Runs Garonne end to end on this machine: a collector on its embedded index and an
# agent shipping this machine's own text logs under /var/log plus the sample Apache
# access log in packaging/samples, over QUIC with mutual TLS, all on 127.0.0.1.
# Progress is shown while documents arrive; at the end it prints the count per dataset
# and searches you can repeat. Everything is kept in .demo/ (gitignored).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/garonne-target}"
demo="$root/.demo"
bin="$CARGO_TARGET_DIR/release"

echo "== building garonne-agent and garonne-collector (release; the first build takes a few minutes)"
cargo build --release --bins

rm -rf "$demo"
mkdir -p "$demo"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

echo "== certificates"
"$bin/garonne-collector" certs init --dir "$demo/certs" --name localhost

cat > "$demo/collector.toml" <<TOML
[collector]
listen = "127.0.0.1:0"
data_dir = "$demo/collector"
cert = "$demo/certs/collector.pem"
key = "$demo/certs/collector.key"
client_ca = "$demo/certs/ca.pem"

[api]
listen = "127.0.0.1:0"
TOML

"$bin/garonne-collector" run --config "$demo/collector.toml" 2> "$demo/collector.log" &
pids+=($!)
port=""
for _ in $(seq 1 300); do
    port=$(sed -n 's/.*collector listening listen=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$demo/collector.log")
    [ -n "$port" ] && break
    kill -0 "${pids[0]}" 2>/dev/null || { cat "$demo/collector.log"; exit 1; }
    sleep 0.1
done
[ -n "$port" ] || { echo "collector did not start"; cat "$demo/collector.log"; exit 1; }
echo "== collector listening on 127.0.0.1:$port (UDP, QUIC), embedded index in $demo/collector"

cat > "$demo/agent.toml" <<TOML
[agent]
id = "demo"
data_dir = "$demo/agent"

[[input]]
paths = ["$root/packaging/samples/apache-access.log", "/var/log/apache2/*access*.log"]
module = "apache.access"

[[input]]
paths = ["/var/log/apache2/*error*.log"]
module = "apache.error"

[[input]]
paths = ["/var/log/syslog", "/var/log/messages", "/var/log/auth.log", "/var/log/kern.log"]
module = "syslog"

[[input]]
paths = ["/var/log/*.log"]
exclude = ["/var/log/auth.log", "/var/log/kern.log"]
module = "plain"

[collector]
addresses = ["127.0.0.1:$port"]
server_name = "localhost"
ca = "$demo/certs/ca.pem"
cert = "$demo/certs/agent.pem"
key = "$demo/certs/agent.key"
TOML

"$bin/garonne-agent" run --config "$demo/agent.toml" 2> "$demo/agent.log" &
pids+=($!)
echo "== agent shipping; its log is $demo/agent.log"

search() { "$bin/garonne-collector" search --config "$demo/collector.toml" "$@"; }
# Done when the agent has read something, nothing waits in its buffer, and its line
# count has stopped growing.
field() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$demo/agent/status.json" 2>/dev/null; }
previous=-1
for _ in $(seq 1 600); do
    sleep 1
    read_lines=$(field lines_read)
    pending=$(field pending_batches)
    printf '   %s lines read, %s batches awaiting acknowledgement, %s documents indexed\n' \
        "${read_lines:-0}" "${pending:-?}" "$(search --count '*')"
    if [ "${pending:-1}" = 0 ] && [ "${read_lines:-0}" -gt 0 ] && [ "$read_lines" = "$previous" ]; then
        break
    fi
    previous=${read_lines:-0}
done

echo "== documents per dataset"
for dataset in apache.access apache.error syslog plain; do
    printf '   %-14s %s\n' "$dataset" "$(search --count "event.dataset:$dataset")"
done

example="event.dataset:apache.access http.response.status_code:404"
echo "== three of the newest documents matching: $example"
search --limit 3 "$example" 2>/dev/null | cut -c1-400

cat <<TEXT

== repeat a search yourself (the index stays in $demo):
   $bin/garonne-collector search --config $demo/collector.toml --count '$example'
   $bin/garonne-collector search --config $demo/collector.toml --limit 5 'http.request.method:POST'
   $bin/garonne-collector search --config $demo/collector.toml --limit 5 'error.message:*'
TEXT
