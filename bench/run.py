"""Side-by-side gRPC echo benchmark: the engine behind bench/run (see bench/README.md).

Each server under test is a command line that starts a plaintext (h2c) gRPC server for bench.Echo/Call on
127.0.0.1:{port}. For every scenario the servers are warmed up, then measured in interleaved rounds, the
order rotated from round to round (A B C, B C A, C A B, ...): each round starts the server pinned to one CPU,
loads it with h2load pinned to the other CPU, reads per-request latencies from h2load's log file and the server's
CPU time from /proc, and stops the server.
The idle-connections scenario instead reads the server's resident memory before and after opening many idle
connections (bench/idle.py). Results: target/bench/report.md (also printed on stdout) and
target/bench/results.json (every round's raw numbers); bench/report turns them into charts and REPORT.md.

Standard library only. Loopback only. Every child process runs under a time limit.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import idle  # noqa: E402  (bench/idle.py: idle HTTP/2 connections)

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PATH = "/bench.Echo/Call"
GRPC_HEADERS = ["content-type: application/grpc", "te: trailers"]

# kind "load": h2load at a fixed concurrency, throughput and latency; "latency": the same with one call in flight,
# where latency is the result and req/s only its inverse; "idle": memory per idle connection (no h2load).
SCENARIOS = {
    "small-unary-many-streams": dict(
        kind="load", conns=50, streams=20, payload=100,
        about="Many concurrent streams multiplexed on few connections (1,000 calls in flight): per-stream "
              "scheduling fairness and per-call overhead. The tail (p99, p99/p90) shows whether streams sharing a "
              "connection are served evenly.",
    ),
    "small-unary-many-conns": dict(
        kind="load", conns=200, streams=1, payload=100,
        about="Many connections with one call in flight each: per-connection cost (polling and writing 200 "
              "sockets, one small exchange per wake-up) rather than stream multiplexing. Connections are opened during "
              "h2load's warm-up, so accept and connection setup are not in the measured window.",
    ),
    "payload-100B": dict(
        kind="load", conns=10, streams=10, payload=100,
        about="Moderate concurrency (100 calls in flight), 100-byte payload: the per-call baseline for the "
              "payload series.",
    ),
    "payload-10kB": dict(
        kind="load", conns=10, streams=10, payload=10_000,
        about="Same concurrency, 10,000-byte payload: message (de)serialization and copying start to matter.",
    ),
    "payload-1MiB": dict(
        kind="load", conns=10, streams=10, payload=1 << 20,
        about="Same concurrency, 1 MiB payload: bulk data path — HTTP/2 flow control, frame splitting, buffer "
              "copies. The server must accept messages slightly over 1 MiB (gRPC's default limit is 4 MiB).",
    ),
    "serial-latency": dict(
        kind="latency", conns=1, streams=1, payload=100,
        about="One connection, one call in flight: the round trip of a lone call through the whole server (read, "
              "decode, handler, encode, write) with no batching to hide behind. p50 and p99 are the result; req/s "
              "is only 1 ÷ latency.",
    ),
    "idle-connections": dict(
        kind="idle", conns=1000, streams=1, payload=100,
        about="Memory per idle connection: the server's resident set size (VmRSS) before and after opening N "
              "connections that each completed the HTTP/2 SETTINGS exchange and one call and then went quiet, "
              "divided by N. Measured after 10 warm connections, so one-time setup is not counted.",
    ),
}
IDLE_WARM_CONNECTIONS = 10  # opened before the RSS baseline: lazily built per-process state is not per connection
IDLE_SETTLE_S = 1.0  # pause before each RSS reading, for the server to finish what the last connection started
IDLE_DEADLINE_S = 120.0  # for opening all the connections of one round

FOREIGN_CPU_LIMIT = 0.05  # share of all CPUs used by other programs during a round before it is flagged
METRICS = ["rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "tail_ratio", "cpu_us_per_call"]
IDLE_METRICS = ["kib_per_conn"]
METRIC_TITLES = {"rps": "req/s", "p50_ms": "p50", "p90_ms": "p90", "p99_ms": "p99", "p999_ms": "p99.9",
                 "tail_ratio": "p99/p90", "cpu_us_per_call": "CPU µs/call", "kib_per_conn": "KiB/conn"}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------- setup

def ensure_h2load() -> None:
    """Installs Debian's nghttp2-client (h2load and nghttp) when either tool is missing."""
    if shutil.which("h2load") and shutil.which("nghttp"):
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    install = sudo + ["apt-get", "install", "-y", "--no-install-recommends", "nghttp2-client"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log("h2load not found: installing nghttp2-client")
    if subprocess.run(install, env=env, timeout=600).returncode != 0:
        subprocess.run(sudo + ["apt-get", "update"], env=env, timeout=600, check=True)
        subprocess.run(install, env=env, timeout=600, check=True)
    if not (shutil.which("h2load") and shutil.which("nghttp")):
        sys.exit("bench: h2load/nghttp still missing after installing nghttp2-client")


def grpc_frame(payload_size: int) -> bytes:
    """A gRPC length-prefixed frame carrying bench.Msg{payload = 'x' * payload_size}, uncompressed."""
    length, varint = payload_size, bytearray()
    while True:
        byte, length = length & 0x7F, length >> 7
        varint.append(byte | (0x80 if length else 0))
        if not length:
            break
    message = b"\x0a" + bytes(varint) + b"x" * payload_size
    return b"\x00" + struct.pack(">I", len(message)) + message


def busy_fraction(seconds: float = 1.0) -> float:
    """How busy the machine's CPUs are over a short sample (0..1), from /proc/stat; -1 when unreadable."""
    def sample():
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return idle, sum(fields)
    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return -1.0
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


class CpuMeter:
    """Separates CPU time spent by this benchmark's processes from everything else on the machine.

    Machine-wide user+nice+system time (/proc/stat) minus the CPU time of this runner and its reaped children
    (server, h2load, nghttp) is time other programs used: a build or test run that skews the round. Steal is
    time the hypervisor gave to someone else.
    """

    def __init__(self):
        self.t0, self.stat0, self.own0 = time.monotonic(), self._stat(), self._own()

    @staticmethod
    def _stat() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        return fields[0] + fields[1] + fields[2], fields[7] if len(fields) > 7 else 0

    @staticmethod
    def _own() -> float:
        total = 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            usage = resource.getrusage(who)
            total += usage.ru_utime + usage.ru_stime
        return total

    def read(self) -> dict:
        wall = time.monotonic() - self.t0
        busy1, steal1 = self._stat()
        tick = os.sysconf("SC_CLK_TCK")
        capacity = wall * (os.cpu_count() or 1)
        foreign = (busy1 - self.stat0[0]) / tick - (self._own() - self.own0)
        return {"foreign_cpu": max(0.0, foreign) / capacity, "steal_cpu": (steal1 - self.stat0[1]) / tick / capacity}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


def raise_fd_limit() -> int:
    """Raises this process's soft open-files limit to the hard one (the servers inherit it); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def group_pids(pgid: int) -> list[int]:
    """The live processes of process group `pgid` (a server command and anything it started)."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # After "pid (comm) ": state, ppid, pgrp, ...
        if int(stat[stat.rfind(")") + 2:].split()[2]) == pgid:
            pids.append(int(entry.name))
    return pids


def group_cpu_s(pgid: int) -> float | None:
    """User + system CPU time of process group `pgid`, all threads of every process, in seconds."""
    ticks, seen = 0, False
    for pid in group_pids(pgid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of proc(5)
        seen = True
    return ticks / os.sysconf("SC_CLK_TCK") if seen else None


def group_rss_kib(pgid: int) -> int | None:
    """Resident set size (VmRSS) of process group `pgid`, summed over its processes, in KiB."""
    total, seen = 0, False
    for pid in group_pids(pgid):
        try:
            with open(f"/proc/{pid}/status") as f:
                rss = next((line.split()[1] for line in f if line.startswith("VmRSS:")), None)
        except OSError:
            continue
        if rss is not None:
            total, seen = total + int(rss), True
    return total if seen else None


# ---------------------------------------------------------------------------------------------------- servers

class Server:
    """One run of a server command: started pinned to a CPU in its own process group, stopped by that group."""

    def __init__(self, label: str, command: str, cpu: str, log_path: Path):
        self.label, self.command, self.cpu, self.log_path = label, command, cpu, log_path
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self, start_timeout: float) -> str | None:
        """Starts the server on a fresh port; returns None once the port accepts, or an error."""
        for _ in range(20):
            self.port = free_port()
            if not accepts(self.port):
                break
        else:
            return "no free port found"
        command = self.command.replace("{port}", str(self.port))
        with open(self.log_path, "ab") as out:
            out.write(f"\n=== {datetime.datetime.now().isoformat(timespec='seconds')} {command}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                ["taskset", "-c", self.cpu, "bash", "-c", "exec " + command],
                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"server exited with status {self.proc.returncode} before accepting (see {self.log_path})"
            if accepts(self.port):
                return None
            time.sleep(0.05)
        return f"port {self.port} did not accept within {start_timeout:.0f} s (see {self.log_path})"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        # Whatever else the command left in its process group.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc = None


# ---------------------------------------------------------------------------------------------------- load

def probe(port: int, request_file: Path, frame_len: int) -> dict:
    """One call with nghttp -v: the gRPC status and the echoed frame's size, which h2load cannot see."""
    url = f"http://{HOST}:{port}{PATH}"
    cmd = ["nghttp", "-v", "-t", "10s", "-d", str(request_file)] + sum((["-H", h] for h in GRPC_HEADERS), []) + [url]
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=20).stdout.decode("latin-1")
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": "nghttp timed out"}
    statuses = re.findall(r"recv \(stream_id=\d+\) grpc-status: (\d+)", out)
    messages = re.findall(r"recv \(stream_id=\d+\) grpc-message: (.*)", out)
    received = sum(int(n) for n in re.findall(r"recv DATA frame <length=(\d+)", out))
    result = {"grpc_status": int(statuses[-1]) if statuses else None, "response_bytes": received,
              "expected_bytes": frame_len}
    if messages:
        result["grpc_message"] = messages[-1].strip()
    result["ok"] = result["grpc_status"] == 0 and received == frame_len
    return result


def percentile(sorted_values: list[int], p: float) -> float:
    """Nearest-rank percentile."""
    return sorted_values[max(0, math.ceil(p * len(sorted_values)) - 1)]


def run_h2load(port: int, scenario: dict, request_file: Path, duration: int, warm_up: int, cpu: str,
               log_file: Path | None, server_pgid: int) -> dict:
    """One h2load run. Also the server's CPU time over the measured window: read when h2load's warm-up ends
    (warm_up seconds after h2load starts; its warm-up starts once it has connected, a few ms later) and after
    h2load exits, so it covers the window plus those few ms."""
    cmd = ["taskset", "-c", cpu, "h2load", "-t", "1", "-c", str(scenario["conns"]), "-m", str(scenario["streams"]),
           "-D", str(duration), "-d", str(request_file)]
    if warm_up > 0:
        cmd += ["--warm-up-time", str(warm_up)]
    if log_file is not None:
        cmd += ["--log-file", str(log_file)]
    for header in GRPC_HEADERS:
        cmd += ["-H", header]
    cmd.append(f"http://{HOST}:{port}{PATH}")
    limit = duration + warm_up + 60
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(warm_up)
        cpu_before = group_cpu_s(server_pgid)
        out = proc.communicate(timeout=limit)[0].decode(errors="replace")
        cpu_after = group_cpu_s(server_pgid)
    except subprocess.TimeoutExpired:
        return {"error": f"h2load did not finish within {limit} s"}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    result: dict = {"h2load_exit": proc.returncode}
    if cpu_before is not None and cpu_after is not None:
        result["server_cpu_s"] = cpu_after - cpu_before
    m = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out)
    if m:
        result["rps"] = float(m.group(1))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", out)
    if m:
        for key, value in zip(["total", "started", "done", "succeeded", "failed", "errored", "timeout"], m.groups()):
            result[key] = int(value)
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if m:
        result["http_2xx"], result["http_3xx"], result["http_4xx"], result["http_5xx"] = map(int, m.groups())
    if "rps" not in result or "succeeded" not in result:
        tail = "\n".join(out.strip().splitlines()[-5:])
        result["error"] = f"h2load exit {proc.returncode}, unparsable output: {tail}"
    elif "server_cpu_s" in result and result["succeeded"] > 0:
        result["cpu_us_per_call"] = result["server_cpu_s"] * 1e6 / result["succeeded"]
    return result


def latencies(log_file: Path) -> dict:
    """Per-request latency percentiles (ms) over the successful requests in h2load's log.

    Log lines: start time (µs since epoch) TAB HTTP status TAB request-to-close time (µs). h2load logs the
    streams that close in the measured window only; status -1 means the stream failed (reset, connection lost),
    status 0 means its response headers arrived during the warm-up (a request straddling the window's start):
    those are counted apart and left out of the percentiles.
    """
    ok, straddling, failed = [], 0, 0
    with open(log_file, "rb") as f:
        for line in f:
            parts = line.split(b"\t")
            if len(parts) != 3:
                continue
            if parts[1].startswith(b"2"):
                ok.append(int(parts[2]))
            elif parts[1] == b"0":
                straddling += 1
            else:
                failed += 1
    result = {"logged_ok": len(ok), "logged_straddling": straddling, "logged_not_ok": failed}
    if not ok:
        return result
    ok.sort()
    for key, p in (("p50_ms", 0.50), ("p90_ms", 0.90), ("p99_ms", 0.99), ("p999_ms", 0.999)):
        result[key] = percentile(ok, p) / 1000.0
    result["max_ms"] = ok[-1] / 1000.0
    result["tail_ratio"] = result["p99_ms"] / result["p90_ms"] if result["p90_ms"] > 0 else None
    return result


# ---------------------------------------------------------------------------------------------------- rounds

def measure(server: Server, scenario: dict, request_file: Path, frame_len: int, args, tmp: Path,
            duration: int, warm_up: int, recorded: bool) -> dict:
    result: dict = {"server": server.label}
    log_file = tmp / "h2load.log" if recorded else None
    meter = CpuMeter()
    try:
        error = server.start(args.start_timeout)
        if error:
            result["error"] = error
            return result
        result["port"] = server.port
        result["probe"] = probe(server.port, request_file, frame_len)
        result.update(run_h2load(server.port, scenario, request_file, duration, warm_up, args.load_cpu, log_file,
                                 server.proc.pid))
        if not server.alive():
            result["error"] = result.get("error") or f"server died during the run (see {server.log_path})"
    finally:
        server.stop()
    result.update(meter.read())
    if log_file is not None and log_file.exists():
        if "error" not in result:
            result.update(latencies(log_file))
        log_file.unlink()
    return result


def measure_idle(server: Server, frame: bytes, count: int, args) -> dict:
    """One round of idle-connections: the server's RSS after the warm connections, then after `count` more."""
    result: dict = {"server": server.label, "connections": count, "warm_connections": IDLE_WARM_CONNECTIONS}
    meter = CpuMeter()
    conns: list[socket.socket] = []
    try:
        error = server.start(args.start_timeout)
        if error:
            result["error"] = error
            return result
        result["port"] = server.port
        pgid = server.proc.pid
        deadline = time.monotonic() + IDLE_DEADLINE_S
        try:
            idle.open_many(HOST, server.port, PATH, frame, IDLE_WARM_CONNECTIONS, deadline, conns)
            time.sleep(IDLE_SETTLE_S)
            result["rss_before_kib"] = group_rss_kib(pgid)
            started = time.monotonic()
            idle.open_many(HOST, server.port, PATH, frame, count, deadline, conns)
            result["setup_s"] = time.monotonic() - started
            time.sleep(IDLE_SETTLE_S)
            result["rss_after_kib"] = group_rss_kib(pgid)
        except (OSError, ValueError) as e:
            result["error"] = f"connection {len(conns) + 1}: {e}"
        opened = len(conns)
        result["open_at_reading"] = sum(1 for conn in conns if idle.still_open(conn))
        # Every call answered in full is this scenario's correctness probe.
        result["probe"] = {"ok": "error" not in result, "calls_answered": opened}
        if not server.alive():
            result["error"] = result.get("error") or f"server died during the run (see {server.log_path})"
        elif "error" not in result and result["open_at_reading"] != opened:
            result["error"] = (f"only {result['open_at_reading']} of {opened} connections were still open when "
                               "the RSS was read")
        elif "error" not in result and None in (result["rss_before_kib"], result["rss_after_kib"]):
            result["error"] = "could not read the server's VmRSS"
        elif "error" not in result:
            result["kib_per_conn"] = (result["rss_after_kib"] - result["rss_before_kib"]) / count
    finally:
        for conn in conns:
            conn.close()
        server.stop()
    result.update(meter.read())
    return result


def run_scenario(name: str, servers: list[Server], args, tmp: Path) -> dict:
    scenario = dict(SCENARIOS[name])
    if scenario["kind"] == "idle":
        scenario["conns"] = args.idle_connections
    frame = grpc_frame(scenario["payload"])
    request_file = tmp / f"request-{scenario['payload']}.bin"
    request_file.write_bytes(frame)
    rounds: list[dict] = []
    if scenario["kind"] == "idle":
        log(f"scenario {name}: {scenario['conns']} idle connections after one {scenario['payload']} B call each")
    else:
        log(f"scenario {name}: {scenario['conns']} conns x {scenario['streams']} streams, "
            f"{scenario['payload']} B payload")
    if args.warmup > 0 and scenario["kind"] != "idle":
        for server in servers:
            log(f"  warm-up {server.label} ({args.warmup} s)")
            w = measure(server, scenario, request_file, len(frame), args, tmp, args.warmup, 0, recorded=False)
            if "error" in w:
                log(f"  warm-up {server.label}: {w['error']}")
    for r in range(1, args.rounds + 1):
        # Each round starts with the next server, so that none always runs first or after the
        # same one: a drift within rounds (other load, warming) falls on every server alike.
        start = (r - 1) % len(servers)
        for server in servers[start:] + servers[:start]:
            if scenario["kind"] == "idle":
                res = measure_idle(server, frame, scenario["conns"], args)
            else:
                res = measure(server, scenario, request_file, len(frame), args, tmp, args.duration,
                              args.warm_up_time, recorded=True)
            res["round"] = r
            res["loadavg_1m_after"] = os.getloadavg()[0]
            rounds.append(res)
            if res.get("foreign_cpu", 0.0) > FOREIGN_CPU_LIMIT:
                log(f"  round {r} {server.label}: WARNING other programs used {res['foreign_cpu']:.0%} of the CPUs")
            if "error" in res:
                log(f"  round {r} {server.label}: ERROR {res['error']}")
            elif scenario["kind"] == "idle":
                log(f"  round {r} {server.label}: {res['kib_per_conn']:.1f} KiB per idle connection (RSS "
                    f"{res['rss_before_kib']:,} -> {res['rss_after_kib']:,} KiB)")
            else:
                log(f"  round {r} {server.label}: {res['rps']:.0f} req/s, p50 {res.get('p50_ms', 0):.2f} ms, "
                    f"p99 {res.get('p99_ms', 0):.2f} ms, p99.9 {res.get('p999_ms', 0):.2f} ms, "
                    f"{fmt(res.get('cpu_us_per_call'), 1)} CPU µs/call"
                    + ("" if res["probe"].get("ok") else f", PROBE FAILED {res['probe']}"))
    return {"config": {k: v for k, v in scenario.items() if k != "about"} | {"request_frame_bytes": len(frame)},
            "rounds": rounds}


# ---------------------------------------------------------------------------------------------------- report

def valid(res: dict) -> bool:
    return "error" not in res and (res.get("logged_ok", 0) > 0 or "kib_per_conn" in res)


def metrics_of(config: dict) -> list[str]:
    return IDLE_METRICS if config.get("kind") == "idle" else METRICS


def summarize(data: dict, labels: list[str]) -> dict:
    metrics = metrics_of(data["config"])
    by_round: dict[int, dict[str, dict]] = {}
    for res in data["rounds"]:
        by_round.setdefault(res["round"], {})[res["server"]] = res
    summary: dict = {"servers": {}, "ratios": {}}
    for label in labels:
        ok = [res for res in data["rounds"] if res["server"] == label and valid(res)]
        s: dict = {"valid_rounds": len(ok),
                   "rounds": sum(1 for res in data["rounds"] if res["server"] == label)}
        extra = ["rss_before_kib", "rss_after_kib"] if data["config"].get("kind") == "idle" else []
        for key in metrics + extra:
            values = [res[key] for res in ok if res.get(key) is not None]
            s[key] = statistics.median(values) if values else None
        s["succeeded_median"] = statistics.median([res.get("succeeded", 0) for res in ok]) if ok else None
        # h2load's "failed": non-2xx HTTP status, reset or errored streams, timeouts.
        s["not_ok_total"] = sum(res.get("failed", 0) for res in data["rounds"] if res["server"] == label)
        s["probe_failures"] = sum(1 for res in data["rounds"]
                                  if res["server"] == label and "probe" in res and not res["probe"].get("ok"))
        summary["servers"][label] = s
    base = labels[0]
    for label in labels[1:]:
        per_metric: dict = {}
        for key in metrics:
            per_round = []
            for r in sorted(by_round):
                a, b = by_round[r].get(base), by_round[r].get(label)
                if a and b and valid(a) and valid(b) and a.get(key) and b.get(key) is not None:
                    per_round.append({"round": r, "ratio": b[key] / a[key]})
            per_metric[key] = {"per_round": per_round,
                               "median": statistics.median([x["ratio"] for x in per_round]) if per_round else None}
        summary["ratios"][label] = per_metric
    return summary


def fmt(value, digits=2) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if digits == 0 else f"{value:.{digits}f}"


def fmt_ms(value) -> str:
    """A latency in ms: a third decimal below 1 ms (serial-latency's round trips are tens of µs)."""
    return fmt(value, 3 if value is not None and value < 1 else 2)


def report(meta: dict, results: dict, labels: list[str]) -> str:
    lines = ["# herald side-by-side benchmark", ""]
    lines.append(f"- when: {meta['started']} – {meta['finished']} ({meta['elapsed_s']:.0f} s); host: "
                 f"{meta['cpus']} CPUs, Linux {meta['kernel']}; {meta['h2load']}")
    lines.append(f"- server pinned to CPU {meta['server_cpu']}, h2load (1 thread) to CPU {meta['load_cpu']}; "
                 f"plaintext h2c on {HOST}; {meta['rounds']} interleaved rounds per scenario, each "
                 f"{meta['warm_up_time_s']} s h2load warm-up + {meta['duration_s']} s measured; "
                 f"{meta['scenario_warmup_s']} s unrecorded warm-up per server per scenario")
    busy = meta["cpu_busy_before"]
    lines.append(f"- before the run: CPUs {busy:.0%} busy over 1 s, 1-minute load average "
                 f"{meta['loadavg_1m_before']:.2f}" + (" — **the machine was busy: numbers are skewed**"
                                                      if busy > 0.10 else "")
                 + " (anything else running on this machine skews every number)")
    lines.append("- servers (the first one is the baseline of every ratio):")
    for label in labels:
        lines.append(f"  - `{label}`: `{meta['servers'][label]}`")
    lines.append("- latencies: per request, from h2load's log (successful requests of the measured window), "
                 "medians over rounds; ratios: each round's value ÷ the baseline's value in the same round, then "
                 "the median of those per-round ratios (req/s: > 1 is faster; latencies: < 1 is faster)")
    lines.append("- h2load only sees HTTP status: a gRPC error (grpc-status ≠ 0 in trailers, HTTP 200) counts as "
                 "a success under load; each round's one-call `nghttp` probe checks grpc-status 0 and the echoed "
                 "size instead")
    lines.append("- CPU µs/call: the server's user + system CPU time (its whole process group, every thread) over "
                 "h2load's measured window, from /proc/PID/stat, ÷ the calls completed in it (lower is cheaper)")
    base = labels[0]
    for name, data in results.items():
        cfg, summary = data["config"], data["summary"]
        metrics = metrics_of(cfg)
        if cfg.get("kind") == "idle":
            lines += ["", f"## {name}", "",
                      f"{cfg['conns']:,} idle connections, each after one {cfg['payload']:,} B call. "
                      f"{SCENARIOS[name]['about']}", "",
                      "| server | KiB/conn | RSS before (KiB) | RSS after (KiB) | probe failures | valid rounds |",
                      "|---|---:|---:|---:|---:|---:|"]
            for label in labels:
                s = summary["servers"][label]
                lines.append(f"| `{label}` | {fmt(s['kib_per_conn'], 1)} | {fmt(s['rss_before_kib'], 0)} | "
                             f"{fmt(s['rss_after_kib'], 0)} | {s['probe_failures']} | "
                             f"{s['valid_rounds']}/{s['rounds']} |")
        else:
            lines += ["", f"## {name}", "",
                      f"{cfg['conns']} connections × up to {cfg['streams']} concurrent stream(s) each, "
                      f"{cfg['payload']:,} B payload ({cfg['request_frame_bytes']:,} B gRPC frame each way). "
                      f"{SCENARIOS[name]['about']}", "",
                      "| server | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | p99/p90 | CPU µs/call "
                      "| ok calls/round | not OK (HTTP) | probe failures | valid rounds |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
            for label in labels:
                s = summary["servers"][label]
                lines.append(f"| `{label}` | {fmt(s['rps'], 0)} | {fmt_ms(s['p50_ms'])} | {fmt_ms(s['p90_ms'])} | "
                             f"{fmt_ms(s['p99_ms'])} | {fmt_ms(s['p999_ms'])} | {fmt(s['tail_ratio'])} | "
                             f"{fmt(s['cpu_us_per_call'], 1)} | {fmt(s['succeeded_median'], 0)} | "
                             f"{s['not_ok_total']} | {s['probe_failures']} | {s['valid_rounds']}/{s['rounds']} |")
        if len(labels) > 1:
            lines += ["", f"Paired ratios vs `{base}` (median of per-round ratios):", "",
                      "| server | " + " | ".join(METRIC_TITLES[k] for k in metrics) + " |",
                      "|---|" + "---:|" * len(metrics)]
            for label in labels[1:]:
                ratios = summary["ratios"][label]
                lines.append(f"| `{label}` | " + " | ".join(fmt(ratios[k]["median"]) for k in metrics) + " |")
            rounds = sorted({res["round"] for res in data["rounds"]})
            lines += ["", "Per-round ratios:", "",
                      "| server | metric | " + " | ".join(f"r{r}" for r in rounds) + " | median |",
                      "|---|---|" + "---:|" * (len(rounds) + 1)]
            for label in labels[1:]:
                ratios = summary["ratios"][label]
                for key in metrics:
                    got = {x["round"]: x["ratio"] for x in ratios[key]["per_round"]}
                    lines.append(f"| `{label}` | {METRIC_TITLES[key]} | "
                                 + " | ".join(fmt(got.get(r)) for r in rounds) + f" | {fmt(ratios[key]['median'])} |")
        foreign = [res for res in data["rounds"] if "foreign_cpu" in res]
        if foreign:
            worst = max(foreign, key=lambda res: res["foreign_cpu"])
            steal = max(res.get("steal_cpu", 0.0) for res in foreign)
            skewed = [res for res in foreign if res["foreign_cpu"] > FOREIGN_CPU_LIMIT]
            lines += ["", f"Other programs used at most {worst['foreign_cpu']:.1%} of the CPUs during a round "
                          f"(hypervisor steal at most {steal:.1%})."
                      + (" **Skewed by other work: "
                         + ", ".join(f"round {res['round']} `{res['server']}` {res['foreign_cpu']:.0%}" for res in skewed)
                         + " — rerun on an idle machine.**" if skewed else "")]
        errors = [res for res in data["rounds"] if "error" in res]
        if errors:
            lines += ["", "Errors:", ""]
            lines += [f"- round {res['round']} `{res['server']}`: {res['error']}" for res in errors]
    lines += ["", f"Raw per-round numbers: `{meta['results_json']}`.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- main

def parse_args(argv: list[str]):
    parser = argparse.ArgumentParser(
        prog="bench/run", description="Side-by-side h2load benchmark of gRPC echo servers (see bench/README.md).",
        epilog="example: bench/run cpp='target/bench/cpp-echo-server --port {port}' "
               "herald='target/release/examples/echo --port {port}'")
    parser.add_argument("servers", nargs="*", metavar="LABEL=COMMAND",
                        help="a server: COMMAND must serve bench.Echo/Call as plaintext h2c gRPC on "
                             "127.0.0.1:{port}; the first server is the baseline of every ratio")
    parser.add_argument("--scenario", action="append", default=[],
                        help="scenario to run (repeatable or comma-separated; default: all): "
                             + ", ".join(SCENARIOS))
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per scenario (default 5)")
    parser.add_argument("--duration", type=int, default=10, help="measured seconds per round (default 10)")
    parser.add_argument("--warm-up-time", type=int, default=2,
                        help="h2load's own unmeasured warm-up at the start of every round, seconds (default 2)")
    parser.add_argument("--warmup", type=int, default=3,
                        help="unrecorded warm-up run per server before each scenario's rounds, seconds; "
                             "0 skips it (default 3)")
    parser.add_argument("--server-cpu", default="0", help="CPU list for the server, as taskset -c (default 0)")
    parser.add_argument("--load-cpu", default="1", help="CPU list for h2load, as taskset -c (default 1)")
    parser.add_argument("--idle-connections", type=int, default=1000,
                        help="connections opened in the idle-connections scenario (default 1000)")
    parser.add_argument("--start-timeout", type=float, default=30, help="seconds for a server to accept (default 30)")
    parser.add_argument("--out", default="target/bench", help="output directory, relative to the repository root")
    parser.add_argument("--list-scenarios", action="store_true", help="print the scenarios and exit")
    args = parser.parse_args(argv)
    if args.list_scenarios:
        for name, s in SCENARIOS.items():
            shape = (f"{s['conns']} idle connections" if s["kind"] == "idle"
                     else f"c={s['conns']} m={s['streams']} payload={s['payload']} B")
            print(f"{name} ({s['kind']}): {shape} — {s['about']}")
        sys.exit(0)
    if not args.servers:
        parser.error("give at least one LABEL=COMMAND")
    if args.rounds < 1 or args.duration < 1 or args.warm_up_time < 0 or args.warmup < 0 or args.idle_connections < 1:
        parser.error("--rounds, --duration and --idle-connections must be >= 1, warm-ups >= 0")
    names = [n for item in (args.scenario or ["all"]) for n in item.split(",") if n]
    if "all" in names:
        names = list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    args.scenarios = list(dict.fromkeys(names))
    servers: dict[str, str] = {}
    for item in args.servers:
        label, sep, command = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_.+-]+", label) or not command.strip():
            parser.error(f"expected LABEL=COMMAND (label: letters, digits, _ . + -), got {item!r}")
        if label in servers:
            parser.error(f"label {label!r} given twice")
        if "{port}" not in command:
            parser.error(f"the command for {label!r} has no {{port}}")
        servers[label] = command
    args.server_commands = servers
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    for tool in ("taskset", "bash"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} not found")
    ensure_h2load()
    if "idle-connections" in args.scenarios:
        fds = raise_fd_limit()
        if fds < args.idle_connections + IDLE_WARM_CONNECTIONS + 100:
            sys.exit(f"bench: the open-files limit ({fds}) is too low for {args.idle_connections} idle connections; "
                     "lower --idle-connections or raise the hard limit (ulimit -Hn)")
    out_dir = (ROOT / args.out).resolve()
    logs = out_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):
        old.unlink()
    labels = list(args.server_commands)
    servers = [Server(label, cmd, args.server_cpu, logs / f"{label}.log") for label, cmd in args.server_commands.items()]
    per_run = args.warm_up_time + args.duration + 1
    loaded = [n for n in args.scenarios if SCENARIOS[n]["kind"] != "idle"]
    estimate = len(loaded) * len(servers) * (args.rounds * per_run + (args.warmup + 1 if args.warmup else 0))
    if len(loaded) < len(args.scenarios):
        estimate += len(servers) * args.rounds * (2 * IDLE_SETTLE_S + 1 + args.idle_connections / 1000)
    log(f"{len(args.scenarios)} scenario(s) x {len(servers)} server(s) x {args.rounds} round(s): "
        f"about {estimate / 60:.0f} min")
    h2load_version = subprocess.run(["h2load", "--version"], capture_output=True, timeout=10).stdout.decode().strip()
    meta = {
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpus": os.cpu_count(), "kernel": platform.release(), "h2load": h2load_version,
        "server_cpu": args.server_cpu, "load_cpu": args.load_cpu, "rounds": args.rounds,
        "duration_s": args.duration, "warm_up_time_s": args.warm_up_time, "scenario_warmup_s": args.warmup,
        "idle_connections": args.idle_connections,
        "loadavg_1m_before": os.getloadavg()[0], "cpu_busy_before": busy_fraction(),
        "servers": args.server_commands,
        "results_json": str((out_dir / "results.json").relative_to(ROOT))
        if out_dir.is_relative_to(ROOT) else str(out_dir / "results.json"),
    }
    try:
        meta["git_rev"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                                         timeout=10).stdout.decode().strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    if meta["cpu_busy_before"] > 0.10:
        log(f"WARNING: the CPUs were {meta['cpu_busy_before']:.0%} busy before the run (a build?); every number "
            "of this run is skewed, and the run slows that work down")
    t0 = time.monotonic()
    results: dict = {}

    def write() -> str:
        meta["finished"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        meta["elapsed_s"] = time.monotonic() - t0
        for data in results.values():
            data["summary"] = summarize(data, labels)
        (out_dir / "results.json").write_text(json.dumps({"meta": meta, "scenarios": results}, indent=1) + "\n")
        markdown = report(meta, results, labels)
        (out_dir / "report.md").write_text(markdown)
        return markdown

    with tempfile.TemporaryDirectory(prefix="bench-", dir=out_dir) as tmp:
        for name in args.scenarios:
            results[name] = run_scenario(name, servers, args, Path(tmp))
            write()  # partial results survive an interrupted run
    markdown = write()
    print(markdown)
    log(f"report: {out_dir / 'report.md'}; raw numbers: {out_dir / 'results.json'}; charts: bench/report")
    failed = any("error" in res or not res.get("probe", {}).get("ok")
                 for data in results.values() for res in data["rounds"])
    return 1 if failed else 0


if __name__ == "__main__":
    # Stopped from outside: unwind like Ctrl-C so the running server is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
