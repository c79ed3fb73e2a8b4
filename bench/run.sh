#!/usr/bin/env bash
# Benchmarks Garonne against rsyslog and syslog-ng on this machine, on loopback.
#
#   bench/run.sh                    # 1 GiB of input, every scenario
#   BENCH_BYTES=64MiB bench/run.sh  # a quick run
#   BENCH_SCENARIOS=garonne,latency bench/run.sh
#
# Steps: installs rsyslog, zstd, time and syslog-ng's libraries with apt; unpacks
# syslog-ng (which conflicts with rsyslog as a Debian package) into a folder of its own;
# builds Garonne as packaged (see Cargo.toml); writes the input (real Apache access
# lines repeated with varied addresses and times); runs bench/harness.py, which prints a summary and
# keeps results.json and summary.md in the results directory.
#
# Settings (environment):
#   BENCH_BYTES       input size, bytes or with KiB/MiB/GiB (default 1GiB)
#   BENCH_SCENARIOS   limits,garonne,rsyslog,syslog-ng,latency,school (the default), and
#                     profile: Garonne again under perf, reports in the results directory
#   BENCH_DIR         scratch space for input, tools and processes (/var/tmp/garonne-bench)
#   BENCH_OUT         where results go (default $BENCH_DIR/results/<date-time>)
#   BENCH_SAMPLE      Apache access sample (default ../shared/data/apache-access/apache_logs,
#                     falling back to packaging/samples/apache-access.log)
#   BENCH_SKIP_APT=1  do not call apt (the tools are already there)
#   BENCH_SKIP_BUILD=1 use the binaries already built
#   BENCH_BINARIES    directory holding garonne-agent and garonne-collector to measure
#                     (default: copies of the collector's release build and the agent's
#                     agent-release build in $BENCH_DIR/bin; implies no build when set)
#   BENCH_EXTRA       further arguments for harness.py (e.g. "--latency-seconds 60")
#
# Everything runs on 127.0.0.1 with ports picked at run time; every process started is
# stopped by its PID, and every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/garonne-target}"
bench_dir="${BENCH_DIR:-/var/tmp/garonne-bench}"
out="${BENCH_OUT:-$bench_dir/results/$(date +%Y%m%d-%H%M%S)}"
scenarios="${BENCH_SCENARIOS:-limits,garonne,rsyslog,syslog-ng,latency,school}"

to_bytes() {
    local value=$1
    case "$value" in
        *GiB) echo $(( ${value%GiB} * 1073741824 )) ;;
        *MiB) echo $(( ${value%MiB} * 1048576 )) ;;
        *KiB) echo $(( ${value%KiB} * 1024 )) ;;
        *[!0-9]*) echo "BENCH_BYTES: cannot read size '$value'" >&2; exit 2 ;;
        *) echo "$value" ;;
    esac
}
bytes=$(to_bytes "${BENCH_BYTES:-1GiB}")

sample="${BENCH_SAMPLE:-}"
if [ -z "$sample" ]; then
    sample="$root/../shared/data/apache-access/apache_logs"
    [ -r "$sample" ] || sample="$root/packaging/samples/apache-access.log"
fi
[ -r "$sample" ] || { echo "no Apache access sample at $sample" >&2; exit 2; }

mkdir -p "$bench_dir"

if [ "${BENCH_SKIP_APT:-0}" != 1 ]; then
    echo "== installing rsyslog, zstd, time and syslog-ng's libraries (apt)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # syslog-ng-core itself is only unpacked (below); its libraries are ordinary packages.
    apt-get install -y -qq --no-install-recommends \
        rsyslog zstd time python3 \
        libivykis0 libnet1 libjson-c5 libwrap0 libglib2.0-0 libpcre3 libcap2 >/dev/null
    case ",$scenarios," in
        *,profile,*) apt-get install -y -qq --no-install-recommends linux-perf >/dev/null ;;
    esac
fi

syslog_ng_root="$bench_dir/syslog-ng"
if [ ! -x "$syslog_ng_root/usr/sbin/syslog-ng" ]; then
    echo "== unpacking syslog-ng into $syslog_ng_root"
    rm -rf "$bench_dir/syslog-ng-deb" "$syslog_ng_root"
    mkdir -p "$bench_dir/syslog-ng-deb"
    # apt-get download writes into the current directory.
    (cd "$bench_dir/syslog-ng-deb" && apt-get download syslog-ng-core >/dev/null)
    dpkg-deb -x "$bench_dir"/syslog-ng-deb/syslog-ng-core_*.deb "$syslog_ng_root"
fi

# A system rsyslogd started by the package would compete for the CPU; it is left alone
# but reported.
if pgrep -x rsyslogd >/dev/null || pgrep -x syslog-ng >/dev/null; then
    echo "note: a syslog daemon not started by this script is running: $(pgrep -a -x 'rsyslogd|syslog-ng' | tr '\n' ' ')"
fi

# The binaries as packaged: the collector from the release profile, the agent from
# agent-release (see Cargo.toml), side by side in one directory for the harness.
binaries="${BENCH_BINARIES:-$bench_dir/bin}"
if [ -z "${BENCH_BINARIES:-}" ]; then
    if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
        echo "== building garonne-collector (release) and garonne-agent (agent-release)"
        cargo build --release -p garonne-collector
        cargo build --profile agent-release -p garonne-agent
    fi
    mkdir -p "$binaries"
    cp "$CARGO_TARGET_DIR/release/garonne-collector" "$CARGO_TARGET_DIR/agent-release/garonne-agent" "$binaries/"
fi

input="$bench_dir/input-$bytes.log"
if [ ! -s "$input" ]; then
    echo "== writing $bytes bytes of Apache access lines to $input"
    python3 "$root/bench/make_input.py" --sample "$sample" --bytes "$bytes" --out "$input.partial" >/dev/null
    mv "$input.partial" "$input"
fi

echo "== measuring ($scenarios); results in $out"
# shellcheck disable=SC2086 # BENCH_EXTRA is split into arguments on purpose
python3 "$root/bench/harness.py" \
    --input "$input" \
    --binaries "$binaries" \
    --syslog-ng-root "$syslog_ng_root" \
    --work "$bench_dir/work" \
    --out "$out" \
    --scenarios "$scenarios" \
    ${BENCH_EXTRA:-}
