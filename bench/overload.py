"""Overload: a handler with a fixed service time, offered multiples of its capacity by an open-loop
generator, herald against bare tonic in one run (the engine behind bench/overload; see bench/README.md).

For each round and each server (interleaved: herald, tonic, herald, tonic, ...):
  1. start the server pinned to the server CPU, its handler burning --work-us of CPU per call;
  2. measure its capacity: `herald bench` closed loop (--capacity-callers callers) for --capacity-time;
  3. offer the steps (multiples of that capacity, each --duration long) with `herald bench --rate`, an open
     loop whose latencies count from when each call was due (no coordinated omission), pinned to the load CPU;
  4. stop the server.
Reports, per server and step: goodput (calls answered OK per second) as a fraction of capacity, the p50/p99
latency of the calls served, and what the others got (shed, deadline exceeded). When the last step is below
capacity after heavier ones, also the recovery time: seconds until a whole second is served with no failure
and a p99 within twice the first step's.

Writes target/bench/overload.md (also printed) and target/bench/overload.json. Standard library only,
loopback only, every child process time-limited.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (bench/run.py: Server, free ports)

ROOT = run.ROOT
OUT = ROOT / "target" / "bench"
HERALD_CLI = ROOT / "target" / "release" / "herald"
SERVERS = ROOT / "bench" / "servers" / "target" / "release"
REQUEST = '{"payload": "' + "eHh4" * 25 + '"}'  # 75 bytes of "x", base64 as protobuf's JSON mapping says


def bench(port: int, cpu: str, args: list[str], json_path: Path, limit: float) -> dict:
    """One `herald bench` run against 127.0.0.1:port; its JSON report."""
    cmd = ["taskset", "-c", cpu, str(HERALD_CLI), "bench", "--plaintext", f"127.0.0.1:{port}", "bench.Echo/Call",
           "-d", REQUEST, "--no-progress", "--json", str(json_path)] + args
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    if done.returncode != 0:
        raise RuntimeError(f"herald bench failed: {done.stderr.strip() or done.stdout.strip()}")
    return json.loads(json_path.read_text())


def finite(value):
    """`value` with every infinite recovery time replaced by null and marked "recovered": false."""
    if isinstance(value, dict):
        out = {k: finite(v) for k, v in value.items()}
        if value.get("recovery_s") == float("inf"):
            out["recovery_s"], out["recovered"] = None, False
        return out
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def recovery(report: dict, steps: list[float], duration: float) -> float | None:
    """Seconds from the start of the last step until a second with no failure and p99 ≤ 2 × the first step's p99.
    None when the plan has no recovery step (the last step must be lighter than an earlier one)."""
    if len(steps) < 2 or steps[-1] >= max(steps[:-1]):
        return None
    first = report["steps"][0].get("latency_ms") or {}
    baseline = first.get("p99")
    if baseline is None:
        return None
    start = int(round(duration * (len(steps) - 1)))
    for i, second in enumerate(report["timeline"][start:]):
        latency = second.get("latency_ms") or {}
        if second["calls"] and second["ok"] == second["calls"] and latency.get("p99", 1e9) <= 2 * baseline:
            return float(i)
    return float("inf")


def one(label: str, command: str, opts, round_no: int) -> dict:
    server = run.Server(label, command, opts.server_cpu, OUT / "logs" / f"overload-{label}.log")
    error = server.start(30.0)
    if error:
        server.stop()
        raise RuntimeError(f"{label}: {error}")
    try:
        capacity = bench(server.port, opts.load_cpu,
                         ["-c", str(opts.capacity_callers), "--duration", str(opts.capacity_time), "--warmup", "1"],
                         OUT / f"overload-{label}-{round_no}-capacity.json", opts.capacity_time + 60)
        cap = capacity["total"]["goodput"]
        rates = [max(1.0, round(cap * m, 1)) for m in opts.steps]
        limit = opts.duration * len(rates) + opts.timeout + 60
        report = bench(server.port, opts.load_cpu,
                       ["--rate", ",".join(str(r) for r in rates), "--duration", str(opts.duration),
                        "--warmup", "1", "--timeout", str(opts.timeout), "--max-in-flight", "200000",
                        "--connections", str(opts.connections)],
                       OUT / f"overload-{label}-{round_no}.json", limit)
    finally:
        server.stop()
    steps = []
    for multiple, step in zip(opts.steps, report["steps"]):
        latency = step.get("latency_ms") or {}
        steps.append({
            "multiple": multiple, "offered": step["rate"], "goodput": step["goodput"],
            "goodput_fraction": step["goodput"] / cap if cap else 0.0,
            "p50_ms": latency.get("p50"), "p99_ms": latency.get("p99"),
            "codes": step["codes"],
        })
    return {"label": label, "round": round_no, "capacity": cap, "steps": steps,
            "recovery_s": recovery(report, opts.steps, opts.duration)}


def fmt(value, spec: str, unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def markdown(results: list[dict], opts) -> str:
    labels = list(dict.fromkeys(r["label"] for r in results))
    lines = [
        "# Overload: herald vs bare tonic",
        "",
        f"Handler: {opts.work_us} µs of CPU per call, server pinned to CPU {opts.server_cpu}, `herald bench` "
        f"open loop pinned to CPU {opts.load_cpu} ({opts.connections} connection(s)). herald's admission: "
        f"max_concurrency {opts.max_concurrency}, queue {opts.queue}, queue_timeout_ms {opts.queue_timeout_ms}; "
        f"handler threads {opts.handler_threads} (0: handlers on the connections' thread). "
        f"Steps of {opts.duration:g} s at {', '.join(f'{m:g}×' for m in opts.steps)} each server's measured "
        f"capacity; call deadline {opts.timeout:g} s. Both servers on one tokio worker with event_interval "
        f"{opts.event_interval}. Goodput: OK answers received during the step. Served p50/p99: latency of the calls "
        f"answered OK, counted from when each was due. Medians over {opts.rounds} round(s).",
        "",
        "| server | capacity/s | step | offered/s | goodput/s | goodput ÷ capacity | served p50 | served p99 | failures |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    summary = {}
    for label in labels:
        rows = [r for r in results if r["label"] == label]
        cap = statistics.median(r["capacity"] for r in rows)
        summary[label] = {"capacity": cap, "steps": []}
        for i, multiple in enumerate(opts.steps):
            col = lambda key: [r["steps"][i][key] for r in rows if r["steps"][i][key] is not None]  # noqa: E731
            med = lambda key: statistics.median(col(key)) if col(key) else None  # noqa: E731
            codes: dict[str, int] = {}
            for r in rows:
                for code, n in r["steps"][i]["codes"].items():
                    if code != "OK":
                        codes[code] = codes.get(code, 0) + n
            failures = ", ".join(f"{c} {n // len(rows)}" for c, n in sorted(codes.items())) or "none"
            step = {"multiple": multiple, "offered": med("offered"), "goodput": med("goodput"),
                    "goodput_fraction": med("goodput_fraction"), "p50_ms": med("p50_ms"), "p99_ms": med("p99_ms")}
            summary[label]["steps"].append(step)
            lines.append(
                f"| {label} | {cap:,.0f} | {multiple:g}× | {fmt(step['offered'], ',.0f')} | "
                f"{fmt(step['goodput'], ',.0f')} | {fmt(step['goodput_fraction'], '.2f')} | "
                f"{fmt(step['p50_ms'], '.1f', ' ms')} | {fmt(step['p99_ms'], '.1f', ' ms')} | {failures} |")
        recov = [r["recovery_s"] for r in rows if r["recovery_s"] is not None]
        summary[label]["recovery_s"] = statistics.median(recov) if recov else None
    if any(s["recovery_s"] is not None for s in summary.values()):
        lines += ["", "Recovery after the last step starts (a second with no failure and p99 ≤ 2× the first step's):"]
        for label, s in summary.items():
            never = s["recovery_s"] == float("inf")
            lines.append(f"- {label}: " + ("not within the step" if never else fmt(s["recovery_s"], ".0f", " s")))
    lines += ["", "Reproduce: `" + " ".join(["bench/overload"] + sys.argv[1:]) + "`", ""]
    return "\n".join(lines), summary


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench/overload", description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-us", type=int, default=1000, help="CPU per call in the handler (default 1000)")
    parser.add_argument("--steps", default="1,2,5", help="multiples of capacity, one step each (default 1,2,5)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per step (default 10)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (default 1)")
    parser.add_argument("--timeout", type=float, default=5.0, help="each call's deadline in seconds (default 5)")
    parser.add_argument("--connections", type=int, default=4, help="HTTP/2 connections of the generator")
    parser.add_argument("--capacity-callers", type=int, default=8)
    parser.add_argument("--capacity-time", type=float, default=5.0)
    parser.add_argument("--max-concurrency", type=int, default=1, help="herald's admission slots (default 1)")
    parser.add_argument("--max-queue", type=int, default=1000)
    parser.add_argument("--queue-timeout-ms", type=int, default=100)
    parser.add_argument("--queue", default="lifo", choices=["lifo", "codel"])
    parser.add_argument("--handler-threads", type=int, default=1,
                        help="herald's handler pool (Server::builder().handler_threads): handlers on threads apart "
                             "from the connections' (default 1; 0 runs them on the connections' thread, as tonic does)")
    parser.add_argument("--only", choices=["herald", "tonic"], help="run one server only (for exploring settings)")
    parser.add_argument("--event-interval", type=int, default=61,
                        help="tokio's event_interval for both servers: how many task polls between looks at the "
                             "sockets (tokio's default 61; lower keeps I/O flowing past CPU-heavy handlers)")
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--load-cpu", default="1")
    opts = parser.parse_args(argv)
    opts.steps = [float(s) for s in opts.steps.split(",")]

    for binary in (HERALD_CLI, SERVERS / "herald-echo", SERVERS / "tonic-echo"):
        if not binary.exists():
            print(f"bench/overload: {binary} is missing; build it first:\n"
                  "  cargo build --release -p herald-cli && (cd bench/servers && cargo build --release)",
                  file=sys.stderr)
            return 1
    (OUT / "logs").mkdir(parents=True, exist_ok=True)
    herald = (f"{SERVERS / 'herald-echo'} --port {{port}} --work-us {opts.work_us} "
              f"--max-concurrency {opts.max_concurrency} --max-queue {opts.max_queue} "
              f"--queue-timeout-ms {opts.queue_timeout_ms} --queue {opts.queue} --event-interval {opts.event_interval} "
              f"--handler-threads {opts.handler_threads}")
    tonic = f"{SERVERS / 'tonic-echo'} --port {{port}} --work-us {opts.work_us} --event-interval {opts.event_interval}"
    results = []
    for round_no in range(1, opts.rounds + 1):
        for label, command in (("herald", herald), ("tonic", tonic)):
            if opts.only and label != opts.only:
                continue
            started = time.monotonic()
            result = one(label, command, opts, round_no)
            results.append(result)
            print(f"round {round_no} {label}: capacity {result['capacity']:,.0f}/s, "
                  + "; ".join(f"{s['multiple']:g}× goodput {s['goodput_fraction']:.2f} p99 "
                              f"{fmt(s['p99_ms'], '.1f', ' ms')}" for s in result["steps"])
                  + f" ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    text, summary = markdown(results, opts)
    (OUT / "overload.md").write_text(text)
    # JSON has no infinity: a recovery that never came is written as null with "recovered": false.
    (OUT / "overload.json").write_text(json.dumps(finite({"options": vars(opts), "rounds": results,
                                                          "summary": summary}),
                                                  indent=2))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
