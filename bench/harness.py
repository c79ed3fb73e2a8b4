#!/usr/bin/env python3
"""Measures Garonne, rsyslog, syslog-ng and two limits on the same input, on loopback.

`bench/run.sh` installs the tools, builds Garonne and prepares the input, then calls
this script. It can also be run alone once those exist; see `--help`.

Scenarios (each starts its own processes on 127.0.0.1 and stops them by PID):

- `limits`: `cat` of the page-cached input to /dev/null and `zstd -1 -T1` of it.
- `garonne`: agent tailing the input -> QUIC -> collector with `sink = "discard"`.
- `rsyslog`: imfile -> omfwd TCP -> a second rsyslogd writing a file.
- `syslog-ng`: wildcard-file -> network TCP -> a second syslog-ng writing a file.
- `latency`: Garonne at half its measured maximum line rate; write -> collector latency.
- `school`: 200 files appended a few lines a second each; agent CPU and memory.
- `profile`: the `garonne` run again with `perf record` attached to the agent and the
  collector; writes `perf-agent.txt` and `perf-collector.txt` (not part of the default
  list: perf's own CPU use disturbs the figures).

How the throughput runs work: the shipper and its receiver are started on an empty
watched directory and given a moment to settle; then the page-cached input is hard-linked
into that directory (instantaneous, no copy) and the clock starts. The clock stops when
the receiver has every line: for Garonne when the collector's
`garonne_collector_events_received_total` reaches the input's line count, for the syslog
daemons when the received file stopped growing and holds that many lines. CPU time is
utime + stime from /proc/PID/stat, taken just before the input appears and again at the
end, so start-up is not counted; peak RSS is VmHWM from /proc/PID/status.

Results go to `results.json` and `summary.md` in the output directory.
"""

import argparse
import calendar
import http.client
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
GIB = 1 << 30
MIB = 1 << 20
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# How long the syslog receivers' output must stay unchanged before it is counted.
QUIET_SECONDS = 3.0
POLL_SECONDS = 0.05


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------------------
# Processes: every one this script starts is recorded and stopped by its PID.


class Processes:
    def __init__(self):
        self.running = []

    def start(self, name, argv, log_path, env=None):
        log_file = open(log_path, "ab")
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log_file.close()
        process.bench_name = name
        self.running.append(process)
        return process

    def stop(self, process, grace=20.0):
        """SIGTERM to the process and the descendants it started, then SIGKILL if needed."""
        if process not in self.running:
            return
        descendants = process_tree(process.pid)[1:]
        for pid in [process.pid] + descendants:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log(f"{process.bench_name} (pid {process.pid}) ignored SIGTERM; killing it")
            process.kill()
            process.wait(timeout=10)
        for pid in descendants:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.running.remove(process)

    def stop_all(self):
        for process in list(reversed(self.running)):
            self.stop(process, grace=10.0)


PROCESSES = Processes()


def process_tree(pid):
    """The PID and every descendant, found through /proc/PID/task/*/children."""
    found = [pid]
    index = 0
    while index < len(found):
        current = found[index]
        index += 1
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as children:
                    found.extend(int(child) for child in children.read().split())
            except OSError:
                pass
    return found


def cpu_seconds(pid):
    """utime + stime of the process and its live descendants, in seconds."""
    total = 0
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def memory_kib(pid, key):
    """A /proc/PID/status memory field (VmHWM, VmRSS) summed over the process tree."""
    total = 0
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/status") as status:
                for line in status:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def fill_template(name, destination, **values):
    with open(os.path.join(HERE, "conf", name)) as template:
        text = template.read()
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    leftover = re.search(r"@[A-Z]+@", text)
    if leftover:
        raise RuntimeError(f"{name}: placeholder {leftover.group(0)} not filled")
    with open(destination, "w") as out:
        out.write(text)
    return destination


def fresh_directory(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def count_lines(path):
    lines = 0
    with open(path, "rb") as source:
        while True:
            block = source.read(16 * MIB)
            if not block:
                return lines
            lines += block.count(b"\n")


def load_average():
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


def wait_for_port(port, timeout):
    def accepting():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    return wait_until(accepting, timeout, 0.1)


# ---------------------------------------------------------------------------------------
# Garonne


class Metrics:
    """Reads the collector's Prometheus counters over one kept-alive HTTP connection."""

    COUNTER = re.compile(r"^(garonne_collector_[a-z_]+_total)\s+([0-9.eE+]+)$", re.M)

    def __init__(self, port):
        self.port = port
        self.connection = None

    def read(self):
        for _attempt in range(2):
            try:
                if self.connection is None:
                    self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                self.connection.request("GET", "/metrics")
                body = self.connection.getresponse().read().decode()
                return {name: int(float(value)) for name, value in self.COUNTER.findall(body)}
            except (OSError, http.client.HTTPException):
                if self.connection is not None:
                    self.connection.close()
                self.connection = None
        return {}

    def events(self):
        return self.read().get("garonne_collector_events_received_total", -1)


class Garonne:
    """A collector with the discard sink and an agent watching one directory."""

    def __init__(self, binaries, work, certs):
        self.binaries = binaries
        self.work = fresh_directory(work)
        self.watch = fresh_directory(os.path.join(work, "watch"))
        self.certs = certs
        self.collector = None
        self.agent = None
        self.metrics = None

    def start(self):
        collector_config = fill_template(
            "garonne-collector.toml",
            os.path.join(self.work, "collector.toml"),
            WORK=self.work,
            CERTS=self.certs,
        )
        collector_log = os.path.join(self.work, "collector.log")
        self.collector = PROCESSES.start(
            "garonne-collector",
            [self.binary("garonne-collector"), "run", "--config", collector_config],
            collector_log,
        )
        quic = wait_until(lambda: self.logged(collector_log, r"collector listening listen=127\.0\.0\.1:(\d+)"), 30)
        api = wait_until(lambda: self.logged(collector_log, r"api listening listen=127\.0\.0\.1:(\d+)"), 30)
        if not quic or not api:
            raise RuntimeError(f"collector did not start; see {collector_log}")
        self.metrics = Metrics(int(api))

        self.agent_config = fill_template(
            "garonne-agent.toml",
            os.path.join(self.work, "agent.toml"),
            WORK=self.work,
            WATCH=self.watch,
            CERTS=self.certs,
            PORT=quic,
        )
        self.agent = PROCESSES.start(
            "garonne-agent",
            [self.binary("garonne-agent"), "run", "--config", self.agent_config],
            os.path.join(self.work, "agent.log"),
        )
        if not wait_until(lambda: self.logged(collector_log, r"(agent connected)"), 30):
            raise RuntimeError(f"agent did not connect; see {self.work}/agent.log")
        time.sleep(1.0)

    def binary(self, name):
        return os.path.join(self.binaries, name)

    @staticmethod
    def logged(path, pattern):
        try:
            with open(path, errors="replace") as text:
                found = re.search(pattern, ANSI.sub("", text.read()))
        except OSError:
            return None
        return found.group(1) if found else None

    def followed_at(self, file_name):
        """Wall-clock time at which the agent logged that it started following a file."""
        stamp = self.logged(
            os.path.join(self.work, "agent.log"),
            r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z\s+INFO\s+\S+: following file path=\S*/"
            + re.escape(file_name),
        )
        if stamp is None:
            return None
        whole, _, fraction = stamp.partition(".")
        seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
        return seconds + float("0." + fraction)

    def status(self):
        output = subprocess.run(
            [self.binary("garonne-agent"), "status", "--config", self.agent_config],
            capture_output=True,
            text=True,
            timeout=20,
        )
        try:
            return json.loads(output.stdout)
        except ValueError:
            return {}

    def wait_for_acknowledgements(self, timeout=30):
        """True once the agent's status shows nothing left to acknowledge."""

        def drained():
            status = self.status()
            if status.get("pending_batches") == 0 and status.get("batches_acknowledged", 0) > 0:
                return status
            return None

        return wait_until(drained, timeout, 0.5) or self.status()

    def stop(self):
        for process in (self.agent, self.collector):
            if process is not None:
                PROCESSES.stop(process)


def garonne_throughput(options, input_path, lines, size, profile=False):
    """Agent -> collector throughput; with `profile`, perf samples both processes.

    A profiled run is slower than a plain one (perf takes CPU on a 2-core machine), so
    its figures are kept apart from the table; its reports are written next to the
    results as `perf-agent.txt` and `perf-collector.txt`.
    """
    log("garonne: agent -> QUIC -> collector (sink = discard)" + (", under perf" if profile else ""))
    name = "garonne-profile" if profile else "garonne"
    garonne = Garonne(options.binaries, os.path.join(options.work, name), options.certs)
    recorders = []
    try:
        garonne.start()
        if profile:
            # The collector uses about 25 times the agent's CPU: sample it less often so
            # that both recordings stay near the same size.
            for role, process, frequency in (
                ("agent", garonne.agent, "499"),
                ("collector", garonne.collector, "99"),
            ):
                data = os.path.join(garonne.work, f"perf-{role}.data")
                recorders.append((role, data, PROCESSES.start(
                    f"perf-{role}",
                    ["perf", "record", "-F", frequency, "--call-graph", "dwarf,16384", "-o", data,
                     "-p", str(process.pid)],
                    os.path.join(garonne.work, f"perf-{role}.log"),
                )))
            time.sleep(1.0)
        before = {
            "sender": cpu_seconds(garonne.agent.pid),
            "receiver": cpu_seconds(garonne.collector.pid),
        }
        load_before = load_average()
        started = time.monotonic()
        linked_at = time.time()
        os.link(input_path, os.path.join(garonne.watch, "access.log"))
        deadline = started + options.timeout
        received = 0
        while time.monotonic() < deadline:
            received = garonne.metrics.events()
            if received >= lines:
                break
            time.sleep(POLL_SECONDS)
        finished = time.monotonic()
        for _role, _data, recorder in recorders:
            recorder.send_signal(signal.SIGINT)
        result = measured(
            "Garonne (under perf)" if profile else "Garonne",
            garonne.agent.pid,
            garonne.collector.pid,
            before,
            finished - started,
            size,
            lines,
            received,
        )
        result["load_average"] = [load_before, load_average()]
        picked_up = garonne.followed_at("access.log")
        if picked_up is not None:
            delay = max(0.0, picked_up - linked_at)
            result["picked_up_after_seconds"] = delay
            result["mib_per_second_after_pickup"] = size / MIB / max(1e-9, result["seconds"] - delay)
            log(f"Garonne: file picked up {delay:.1f} s after it appeared, "
                f"{result['mib_per_second_after_pickup']:.1f} MiB/s from then on")
        counters = garonne.metrics.read()
        result["collector_counters"] = counters
        status = garonne.wait_for_acknowledgements()
        result["agent_status"] = status
        result["all_acknowledged"] = status.get("pending_batches") == 0
        for role, data, recorder in recorders:
            PROCESSES.stop(recorder, grace=60)
            report_perf(data, os.path.join(options.out, f"perf-{role}.txt"))
        return result
    finally:
        for _role, _data, recorder in recorders:
            PROCESSES.stop(recorder, grace=60)
        garonne.stop()


def report_perf(data, destination):
    """Flat and caller-grouped perf reports of one recording, as text."""
    with open(destination, "w") as out:
        reports = (
            ["--no-children", "--sort", "symbol", "--percent-limit", "0.5"],
            ["--children", "--sort", "symbol", "--percent-limit", "2"],
            ["--no-children", "--sort", "dso", "--percent-limit", "0.5"],
        )
        for arguments in reports:
            out.write(f"# perf report {' '.join(arguments)}\n")
            out.flush()
            subprocess.run(
                ["perf", "report", "-i", data, "--stdio", "-g", "none"] + arguments,
                stdout=out,
                stderr=subprocess.DEVNULL,
                timeout=600,
            )
    log(f"perf report written to {destination}")


def measured(name, sender, receiver, before, seconds, size, lines, received):
    """The throughput, CPU and memory figures of one run, taken at its end."""
    sender_cpu = cpu_seconds(sender) - before["sender"]
    receiver_cpu = cpu_seconds(receiver) - before["receiver"]
    result = {
        "name": name,
        "seconds": seconds,
        "bytes": size,
        "lines": lines,
        "lines_received": received,
        "count_ok": received == lines,
        "mib_per_second": size / MIB / seconds,
        "lines_per_second": lines / seconds,
        "sender_cpu_seconds": sender_cpu,
        "receiver_cpu_seconds": receiver_cpu,
        "sender_cpu_per_gib": sender_cpu * GIB / size,
        "receiver_cpu_per_gib": receiver_cpu * GIB / size,
        "sender_peak_rss_mib": memory_kib(sender, "VmHWM") / 1024,
        "receiver_peak_rss_mib": memory_kib(receiver, "VmHWM") / 1024,
    }
    log(
        f"{name}: {result['mib_per_second']:.1f} MiB/s, {received}/{lines} lines, "
        f"sender {result['sender_cpu_per_gib']:.1f} CPU-s/GiB "
        f"{result['sender_peak_rss_mib']:.1f} MiB peak"
    )
    return result


# ---------------------------------------------------------------------------------------
# rsyslog and syslog-ng: a sender following the file, a receiver writing a file.


def syslog_commands(kind, options, conf, work):
    """The argv and environment that run one syslog daemon in the foreground."""
    if kind == "rsyslog":
        return ["rsyslogd", "-n", "-f", conf, "-i", os.path.join(work, "rsyslogd.pid")], None
    root = options.syslog_ng_root
    env = dict(os.environ)
    libraries = [os.path.join(root, "usr/lib/syslog-ng"), os.path.join(root, "usr/lib/x86_64-linux-gnu")]
    env["LD_LIBRARY_PATH"] = ":".join(libraries + [env.get("LD_LIBRARY_PATH", "")])
    argv = [
        os.path.join(root, "usr/sbin/syslog-ng"),
        "--foreground",
        "--stderr",
        "--no-caps",
        f"--cfgfile={conf}",
        f"--module-path={os.path.join(root, 'usr/lib/syslog-ng/3.38')}",
        f"--pidfile={os.path.join(work, 'syslog-ng.pid')}",
        f"--persist-file={os.path.join(work, 'syslog-ng.persist')}",
        f"--control={os.path.join(work, 'syslog-ng.ctl')}",
    ]
    return argv, env


def syslog_throughput(kind, options, input_path, lines, size):
    label = {"rsyslog": "rsyslog", "syslog-ng": "syslog-ng"}[kind]
    log(f"{label}: file -> TCP -> second {label} writing a file")
    work = fresh_directory(os.path.join(options.work, kind))
    watch = fresh_directory(os.path.join(work, "watch"))
    port = free_port()
    started_processes = []
    try:
        daemons = {}
        for role in ("receiver", "sender"):
            role_work = fresh_directory(os.path.join(work, role))
            os.makedirs(os.path.join(role_work, "state"))
            conf = fill_template(
                f"{kind}-{role}.conf",
                os.path.join(role_work, f"{kind}.conf"),
                WORK=role_work,
                WATCH=watch,
                PORT=port,
            )
            argv, env = syslog_commands(kind, options, conf, role_work)
            process = PROCESSES.start(f"{kind}-{role}", argv, os.path.join(role_work, "daemon.log"), env)
            started_processes.append(process)
            daemons[role] = process
            if role == "receiver" and not wait_for_port(port, 30):
                raise RuntimeError(f"{label} receiver is not listening; see {role_work}/daemon.log")
        time.sleep(2.0)
        for role, process in daemons.items():
            if process.poll() is not None:
                raise RuntimeError(f"{label} {role} exited; see {work}/{role}/daemon.log")

        received_path = os.path.join(work, "receiver", "received.log")
        before = {
            "sender": cpu_seconds(daemons["sender"].pid),
            "receiver": cpu_seconds(daemons["receiver"].pid),
        }
        load_before = load_average()
        started = time.monotonic()
        os.link(input_path, os.path.join(watch, "access.log"))
        received, finished = follow_output(received_path, lines, started + options.timeout)
        result = measured(
            label,
            daemons["sender"].pid,
            daemons["receiver"].pid,
            before,
            finished - started,
            size,
            lines,
            received,
        )
        result["load_average"] = [load_before, load_average()]
        return result
    finally:
        for process in reversed(started_processes):
            PROCESSES.stop(process)


def follow_output(path, lines, deadline):
    """Waits until the file holds `lines` lines; returns the count and when it last grew.

    The file is counted each time it has stayed the same size for QUIET_SECONDS, so a
    receiver that stalls for longer than that only costs an extra count.
    """
    last_size = -1
    last_change = time.monotonic()
    counted_size = -1
    received = 0
    while time.monotonic() < deadline:
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            size = 0
        now = time.monotonic()
        if size != last_size:
            last_size = size
            last_change = now
        elif size > 0 and size != counted_size and now - last_change >= QUIET_SECONDS:
            received = count_lines(path)
            counted_size = size
            if received >= lines:
                return received, last_change
        time.sleep(POLL_SECONDS)
    if last_size > 0:
        received = count_lines(path)
    return received, last_change


# ---------------------------------------------------------------------------------------
# Limits


def run_limit(name, argv, size, lines, work):
    """Runs a command with stdout to /dev/null under GNU time (CPU and peak RSS)."""
    usage_path = os.path.join(work, "time.out")
    started = time.monotonic()
    completed = subprocess.run(
        ["/usr/bin/time", "-f", "%U %S %M", "-o", usage_path] + argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=900,
    )
    seconds = time.monotonic() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{name} failed: {completed.stderr.decode(errors='replace')}")
    with open(usage_path) as usage:
        user, system, peak_kib = usage.read().split()[-3:]
    cpu = float(user) + float(system)
    result = {
        "name": name,
        "command": " ".join(argv),
        "seconds": seconds,
        "bytes": size,
        "lines": lines,
        "mib_per_second": size / MIB / seconds,
        "lines_per_second": lines / seconds,
        "sender_cpu_seconds": cpu,
        "sender_cpu_per_gib": cpu * GIB / size,
        "sender_peak_rss_mib": int(peak_kib) / 1024,
        "load_average": [load_average()],
    }
    log(f"{name}: {result['mib_per_second']:.1f} MiB/s, {result['sender_cpu_per_gib']:.2f} CPU-s/GiB")
    return result


def limits(options, input_path, lines, size):
    """`cat` and `zstd -1 -T1` of the input; `cat` runs twice, the first fills the page cache.

    GNU time's CPU figures have a resolution of 10 ms, which is plenty at 1 GiB.
    """
    log("limits: cat and zstd -1 -T1 of the page-cached input")
    work = fresh_directory(os.path.join(options.work, "limits"))
    run_limit("cat (warm-up)", ["cat", input_path], size, lines, work)
    return [
        run_limit("cat", ["cat", input_path], size, lines, work),
        run_limit("zstd -1 -T1", ["zstd", "-1", "-T1", "-c", input_path], size, lines, work),
    ]


# ---------------------------------------------------------------------------------------
# Latency at a fixed rate


def load_lines(input_path, limit_bytes):
    with open(input_path, "rb") as source:
        block = source.read(limit_bytes)
    return block[: block.rfind(b"\n") + 1].splitlines(keepends=True)


def latency(options, input_path, rate):
    """Write -> collector latency of Garonne at a fixed line rate.

    A writer appends `rate / 100` lines every 10 ms to a new file in the watched
    directory and notes, for each write, the clock and the running line count. A poller
    reads the collector's events_received counter every 10 ms and notes when it changed.
    A write is delivered at the first poll whose count covers its last line; its latency
    is that poll's time minus the write's time. The collector counts a batch after
    decoding and parsing it, right before the sink and the acknowledgement, so this is
    write -> parsed at the collector; the acknowledgement reaches the agent one loopback
    round trip later. The poll period adds up to 10 ms. The first seconds are a warm-up
    and are not counted.
    """
    seconds = options.latency_seconds
    warmup = 3.0
    tick = 0.01
    per_tick = max(1, int(round(rate * tick)))
    log(f"latency: Garonne at {per_tick / tick:,.0f} lines/s for {warmup + seconds:.0f} s")
    source_lines = load_lines(input_path, 64 * MIB)
    chunks = []
    for start in range(0, len(source_lines) - per_tick + 1, per_tick):
        chunks.append(b"".join(source_lines[start : start + per_tick]))
        if len(chunks) >= 4096:
            break
    garonne = Garonne(options.binaries, os.path.join(options.work, "latency"), options.certs)
    polls = []
    writes = []
    stop_polling = threading.Event()

    def poll():
        metrics = Metrics(garonne.metrics.port)
        last = -2
        while not stop_polling.is_set():
            count = metrics.events()
            if count != last:
                polls.append((time.monotonic(), count))
                last = count
            time.sleep(tick)

    try:
        garonne.start()
        before = cpu_seconds(garonne.agent.pid)
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        path = os.path.join(garonne.watch, "latency.log")
        total = 0
        written_bytes = 0
        with open(path, "ab", buffering=0) as out:
            # The agent may take up to its scan interval to notice a new file; that is
            # reported by the throughput run, and kept out of this one.
            out.write(source_lines[0])
            total += 1
            if not wait_until(lambda: garonne.metrics.events() >= 1, 60, 0.05):
                raise RuntimeError("the agent did not pick up the latency file in 60 s")
            started = time.monotonic()
            for index in range(int((warmup + seconds) / tick)):
                due = started + index * tick
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                chunk = chunks[index % len(chunks)]
                out.write(chunk)
                total += per_tick
                written_bytes += len(chunk)
                writes.append((time.monotonic(), total))
        writing_seconds = time.monotonic() - started
        wait_until(lambda: polls and polls[-1][1] >= total, 60, 0.05)
        stop_polling.set()
        poller.join(timeout=10)
        agent_cpu = cpu_seconds(garonne.agent.pid) - before
        agent_rss = memory_kib(garonne.agent.pid, "VmHWM") / 1024
    finally:
        stop_polling.set()
        garonne.stop()

    latencies = []
    poll_index = 0
    for written_at, count in writes:
        if written_at - started < warmup:
            continue
        while poll_index < len(polls) and polls[poll_index][1] < count:
            poll_index += 1
        if poll_index == len(polls):
            break
        latencies.append(polls[poll_index][0] - written_at)
    delivered = bool(polls) and polls[-1][1] >= total
    latencies.sort()

    def percentile(fraction):
        if not latencies:
            return None
        return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))] * 1000

    result = {
        "target_lines_per_second": rate,
        "achieved_lines_per_second": total / writing_seconds,
        "achieved_mib_per_second": written_bytes / MIB / writing_seconds,
        "lines_written": total,
        "all_delivered": delivered,
        "samples": len(latencies),
        "p50_ms": percentile(0.50),
        "p90_ms": percentile(0.90),
        "p99_ms": percentile(0.99),
        "max_ms": latencies[-1] * 1000 if latencies else None,
        "agent_cpu_seconds": agent_cpu,
        "agent_cpu_per_gib": agent_cpu * GIB / max(1, written_bytes),
        "agent_peak_rss_mib": agent_rss,
    }
    log(
        f"latency: p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms "
        f"at {result['achieved_lines_per_second']:,.0f} lines/s"
        if latencies
        else "latency: no samples"
    )
    return result


# ---------------------------------------------------------------------------------------
# The school case: many files, few lines


def school(options, input_path):
    """200 files, each appended about `lines_per_second` lines a second for a minute.

    Before the writing starts, the agent has picked up the 200 files (one line each) and
    sat idle for 10 s: that gives its idle CPU and RSS. During the writing its RSS is
    sampled every second. After it, the agent is watched idle for another 10 s.
    """
    files = options.school_files
    seconds = options.school_seconds
    per_second = options.school_lines_per_second
    log(f"school: {files} files, about {per_second} lines/s each, for {seconds} s")
    source_lines = load_lines(input_path, 8 * MIB)
    garonne = Garonne(options.binaries, os.path.join(options.work, "school"), options.certs)
    handles = []
    chooser = random.Random(4)
    try:
        for number in range(files):
            path = os.path.join(garonne.watch, f"site{number:03d}.log")
            handle = open(path, "ab", buffering=0)
            handle.write(chooser.choice(source_lines))
            handles.append(handle)
        total = files
        garonne.start()
        if not wait_until(lambda: garonne.metrics.events() >= total, 60, 0.2):
            raise RuntimeError("the agent did not ship the first line of every file")

        idle_seconds = 10.0
        cpu_start = cpu_seconds(garonne.agent.pid)
        time.sleep(idle_seconds)
        idle_before_cpu = cpu_seconds(garonne.agent.pid) - cpu_start
        idle_rss = memory_kib(garonne.agent.pid, "VmRSS") / 1024

        tick = 0.1
        probability = per_second * tick
        rss_samples = []
        cpu_start = cpu_seconds(garonne.agent.pid)
        started = time.monotonic()
        for index in range(int(seconds / tick)):
            pause = started + index * tick - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            for handle in handles:
                if chooser.random() < probability:
                    handle.write(chooser.choice(source_lines))
                    total += 1
            if index % int(1 / tick) == 0:
                rss_samples.append(memory_kib(garonne.agent.pid, "VmRSS") / 1024)
        active_seconds = time.monotonic() - started
        active_cpu = cpu_seconds(garonne.agent.pid) - cpu_start
        delivered = wait_until(lambda: garonne.metrics.events() >= total, 60, 0.2)

        cpu_start = cpu_seconds(garonne.agent.pid)
        time.sleep(idle_seconds)
        idle_after_cpu = cpu_seconds(garonne.agent.pid) - cpu_start
        result = {
            "files": files,
            "seconds": active_seconds,
            "lines_written": total,
            "lines_per_second": (total - files) / active_seconds,
            "all_delivered": bool(delivered),
            "idle_cpu_percent_before": 100 * idle_before_cpu / idle_seconds,
            "idle_rss_mib": idle_rss,
            "active_cpu_seconds": active_cpu,
            "active_cpu_percent": 100 * active_cpu / active_seconds,
            "active_rss_max_mib": max(rss_samples) if rss_samples else None,
            "idle_cpu_percent_after": 100 * idle_after_cpu / idle_seconds,
            "idle_rss_after_mib": memory_kib(garonne.agent.pid, "VmRSS") / 1024,
            "peak_rss_mib": memory_kib(garonne.agent.pid, "VmHWM") / 1024,
        }
        log(
            f"school: agent {result['active_cpu_percent']:.2f}% CPU while writing, "
            f"idle RSS {idle_rss:.1f} MiB, max RSS {result['active_rss_max_mib']:.1f} MiB"
        )
        return result
    finally:
        for handle in handles:
            handle.close()
        garonne.stop()


# ---------------------------------------------------------------------------------------
# Machine, versions, summary


def first_line(argv, env=None):
    try:
        output = subprocess.run(argv, capture_output=True, text=True, timeout=20, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    text = (output.stdout or output.stderr).strip()
    return text.splitlines()[0].strip() if text else "unavailable"


def machine(options):
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        memory = int(meminfo.readline().split()[1]) // 1024
    syslog_ng_argv, syslog_ng_env = syslog_commands("syslog-ng", options, "/dev/null", options.work)
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "memory_mib": memory,
        "kernel": platform.release(),
        "load_average_at_start": load_average(),
        "versions": {
            "garonne-agent": first_line([os.path.join(options.binaries, "garonne-agent"), "--version"]),
            "garonne-collector": first_line(
                [os.path.join(options.binaries, "garonne-collector"), "--version"]
            ),
            "rustc": first_line(["rustc", "--version"]),
            "rsyslog": first_line(["rsyslogd", "-v"]),
            "syslog-ng": first_line([syslog_ng_argv[0], "--version"], syslog_ng_env),
            "zstd": first_line(["zstd", "--version"]),
            "cat": first_line(["cat", "--version"]),
        },
    }


# Published in issue 4, measured on a 2-vCPU machine of the same kind with 1 GiB of
# Apache access lines; Fluent Bit cannot be installed from Debian's archive here.
FLUENT_BIT_REFERENCE = {
    "name": "Fluent Bit (reference, issue 4)",
    "mib_per_second": 116.0,
    "sender_cpu_per_gib": 3.2,
    "sender_peak_rss_mib": 234.0,
}

TARGETS = {
    "throughput_vs_syslog_ng": 3.5,
    "agent_cpu_vs_zstd": 1.5,
    "agent_rss_shipping_mib": 20.0,
    "agent_rss_idle_200_files_mib": 8.0,
    "latency_p99_ms": 500.0,
}


def number(value, digits=1):
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def summary(results):
    out = []
    host = results["machine"]
    out.append(f"Machine: {host['cores']} cores, {host['cpu_model']}, {host['memory_mib']} MiB, "
               f"Linux {host['kernel']}; load average at start {host['load_average_at_start']}")
    out.append("")
    out.append("Versions: " + "; ".join(f"{k} `{v}`" for k, v in host["versions"].items()))
    out.append("")
    out.append(f"Input: {results['input']['bytes'] / MIB:,.0f} MiB, {results['input']['lines']:,} lines")
    out.append("")

    rows = results.get("throughput", [])
    by_name = {row["name"]: row for row in rows}
    garonne = by_name.get("Garonne")
    if rows:
        out.append("| contender | MiB/s | lines/s | lines delivered | sender CPU-s/GiB | "
                   "receiver CPU-s/GiB | sender peak RSS MiB | receiver peak RSS MiB | load avg before / after |")
        out.append("|---|---:|---:|---|---:|---:|---:|---:|---|")
        for row in rows + [FLUENT_BIT_REFERENCE]:
            delivered = "-"
            if "lines_received" in row:
                delivered = f"{row['lines_received']:,} ({'ok' if row['count_ok'] else 'MISMATCH'})"
            elif "lines" in row:
                delivered = "(reads all)"
            out.append(
                f"| {row['name']} | {number(row.get('mib_per_second'))} | "
                f"{number(row.get('lines_per_second'), 0)} | {delivered} | "
                f"{number(row.get('sender_cpu_per_gib'), 2)} | {number(row.get('receiver_cpu_per_gib'), 2)} | "
                f"{number(row.get('sender_peak_rss_mib'))} | {number(row.get('receiver_peak_rss_mib'))} | "
                f"{' / '.join(row.get('load_average', []))} |"
            )
        out.append("")
    if garonne and "picked_up_after_seconds" in garonne:
        out.append(f"Garonne's agent started reading the file {garonne['picked_up_after_seconds']:.1f} s after "
                   f"it appeared; from then on it shipped {garonne['mib_per_second_after_pickup']:.1f} MiB/s.")
        out.append("")
    profiled = results.get("profiled")
    if profiled:
        out.append(f"Under perf (not comparable): Garonne {profiled['mib_per_second']:.1f} MiB/s; "
                   "reports in perf-agent.txt and perf-collector.txt.")
        out.append("")
    if garonne:
        out.append("| ratio | value |")
        out.append("|---|---:|")
        for peer in ("syslog-ng", "rsyslog", "Fluent Bit (reference, issue 4)", "cat", "zstd -1 -T1"):
            other = by_name.get(peer) or (FLUENT_BIT_REFERENCE if peer.startswith("Fluent") else None)
            if not other:
                continue
            out.append(f"| Garonne / {peer} throughput | {garonne['mib_per_second'] / other['mib_per_second']:.3g}x |")
            if other.get("sender_cpu_per_gib") and peer != "cat":
                out.append(f"| Garonne agent / {peer} sender CPU per GiB | "
                           f"{garonne['sender_cpu_per_gib'] / other['sender_cpu_per_gib']:.3g}x |")
        out.append("")

    lat = results.get("latency")
    if lat:
        out.append("| latency run | value |")
        out.append("|---|---:|")
        out.append(f"| rate asked / achieved (lines/s) | {number(lat['target_lines_per_second'], 0)} / "
                   f"{number(lat['achieved_lines_per_second'], 0)} ({number(lat['achieved_mib_per_second'])} MiB/s) |")
        out.append(f"| write -> collector p50 / p90 / p99 / max (ms) | {number(lat['p50_ms'], 0)} / "
                   f"{number(lat['p90_ms'], 0)} / {number(lat['p99_ms'], 0)} / {number(lat['max_ms'], 0)} |")
        out.append(f"| samples (10 ms writes), all delivered | {lat['samples']}, {lat['all_delivered']} |")
        out.append(f"| agent CPU-s per GiB, peak RSS MiB | {number(lat['agent_cpu_per_gib'], 2)}, "
                   f"{number(lat['agent_peak_rss_mib'])} |")
        out.append("")

    sch = results.get("school")
    if sch:
        out.append("| school case | value |")
        out.append("|---|---:|")
        out.append(f"| files, lines/s in total, seconds | {sch['files']}, {number(sch['lines_per_second'], 0)}, "
                   f"{number(sch['seconds'], 0)} |")
        out.append(f"| agent CPU while writing | {number(sch['active_cpu_percent'], 2)} % of a core |")
        out.append(f"| agent CPU idle before / after | {number(sch['idle_cpu_percent_before'], 2)} % / "
                   f"{number(sch['idle_cpu_percent_after'], 2)} % |")
        out.append(f"| agent RSS idle (200 files watched) | {number(sch['idle_rss_mib'])} MiB |")
        out.append(f"| agent RSS max while writing / peak (VmHWM) | {number(sch['active_rss_max_mib'])} / "
                   f"{number(sch['peak_rss_mib'])} MiB |")
        out.append(f"| all lines delivered | {sch['all_delivered']} ({sch['lines_written']:,} lines) |")
        out.append("")

    out.append("| target | goal | measured | met |")
    out.append("|---|---|---:|---|")
    for line in target_rows(results, by_name):
        out.append(line)
    return "\n".join(out) + "\n"


def target_rows(results, by_name):
    garonne = by_name.get("Garonne")
    syslog_ng = by_name.get("syslog-ng")
    zstd = by_name.get("zstd -1 -T1")

    def row(name, goal, value, met, unit=""):
        if value is None:
            return f"| {name} | {goal} | not measured | - |"
        return f"| {name} | {goal} | {value}{unit} | {'yes' if met else 'no'} |"

    rows = []
    ratio = garonne["mib_per_second"] / syslog_ng["mib_per_second"] if garonne and syslog_ng else None
    rows.append(row("throughput vs syslog-ng", ">= 3.5x", ratio and f"{ratio:.2f}",
                    ratio and ratio >= TARGETS["throughput_vs_syslog_ng"], "x"))
    ratio = garonne["sender_cpu_per_gib"] / zstd["sender_cpu_per_gib"] if garonne and zstd else None
    rows.append(row("agent CPU per GiB vs zstd -1 -T1", "<= 1.5x", ratio and f"{ratio:.2f}",
                    ratio and ratio <= TARGETS["agent_cpu_vs_zstd"], "x"))
    rss = garonne["sender_peak_rss_mib"] if garonne else None
    rows.append(row("agent RSS shipping at full rate", "<= 20 MiB", rss and f"{rss:.1f}",
                    rss and rss <= TARGETS["agent_rss_shipping_mib"], " MiB"))
    sch = results.get("school")
    rss = sch["idle_rss_mib"] if sch else None
    rows.append(row("agent RSS idle, 200 files", "<= 8 MiB", rss and f"{rss:.1f}",
                    rss and rss <= TARGETS["agent_rss_idle_200_files_mib"], " MiB"))
    lat = results.get("latency")
    p99 = lat["p99_ms"] if lat else None
    rows.append(row("write -> ack p99 at half load", "<= 500 ms", p99 and f"{p99:.0f}",
                    p99 is not None and p99 <= TARGETS["latency_p99_ms"], " ms"))
    rows.append("| Apache access parse rate | >= 2 M lines/s/core | see the criterion bench | - |")
    return rows


# ---------------------------------------------------------------------------------------


def main():
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--input", required=True, help="prepared Apache access lines")
    arguments.add_argument("--binaries", required=True, help="directory of the release binaries")
    arguments.add_argument("--syslog-ng-root", required=True, help="folder syslog-ng was unpacked into")
    arguments.add_argument("--work", required=True, help="scratch directory (emptied per scenario)")
    arguments.add_argument("--out", required=True, help="directory for results.json and summary.md")
    arguments.add_argument(
        "--scenarios",
        default="limits,garonne,rsyslog,syslog-ng,latency,school",
        help="comma-separated, run in this order",
    )
    arguments.add_argument("--timeout", type=float, default=900, help="seconds per throughput run")
    arguments.add_argument("--latency-rate", type=float, help="lines/s (default: half of Garonne's)")
    arguments.add_argument("--latency-seconds", type=float, default=30)
    arguments.add_argument("--school-files", type=int, default=200)
    arguments.add_argument("--school-seconds", type=float, default=60)
    arguments.add_argument("--school-lines-per-second", type=float, default=3)
    options = arguments.parse_args()

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    os.makedirs(options.work, exist_ok=True)
    os.makedirs(options.out, exist_ok=True)
    options.certs = os.path.join(options.work, "certs")
    scenarios = [name.strip() for name in options.scenarios.split(",") if name.strip()]
    needs_garonne = {"garonne", "latency", "school"} & set(scenarios)
    if needs_garonne and not os.path.exists(os.path.join(options.certs, "ca.pem")):
        subprocess.run(
            [os.path.join(options.binaries, "garonne-collector"), "certs", "init",
             "--dir", options.certs, "--name", "localhost"],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    size = os.path.getsize(options.input)
    log(f"counting the lines of {options.input} ({size / MIB:,.0f} MiB) and caching it")
    lines = count_lines(options.input)
    results = {
        "machine": machine(options),
        "input": {"path": options.input, "bytes": size, "lines": lines},
        "throughput": [],
    }
    try:
        for scenario in scenarios:
            if scenario == "limits":
                results["throughput"].extend(limits(options, options.input, lines, size))
            elif scenario == "garonne":
                results["throughput"].insert(0, garonne_throughput(options, options.input, lines, size))
            elif scenario == "profile":
                results["profiled"] = garonne_throughput(options, options.input, lines, size, True)
            elif scenario in ("rsyslog", "syslog-ng"):
                results["throughput"].append(syslog_throughput(scenario, options, options.input, lines, size))
            elif scenario == "latency":
                rate = options.latency_rate
                if rate is None:
                    measured_rate = [r for r in results["throughput"] if r["name"] == "Garonne"]
                    if not measured_rate:
                        raise SystemExit("latency needs --latency-rate or the garonne scenario first")
                    rate = measured_rate[0]["lines_per_second"] / 2
                results["latency"] = latency(options, options.input, rate)
            elif scenario == "school":
                results["school"] = school(options, options.input)
            else:
                raise SystemExit(f"unknown scenario {scenario!r}")
    finally:
        PROCESSES.stop_all()
        results["machine"]["load_average_at_end"] = load_average()
        with open(os.path.join(options.out, "results.json"), "w") as out:
            json.dump(results, out, indent=2)
        text = summary(results)
        with open(os.path.join(options.out, "summary.md"), "w") as out:
            out.write(text)
        print()
        print(text)


if __name__ == "__main__":
    sys.exit(main())
