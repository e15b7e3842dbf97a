"""Two gRPC echo servers measured at the same time, sharing one CPU: a ratio the machine's drift cannot move.

On a shared machine the speed of a CPU wanders by 10-30 % from one ten-second run to the next, so two servers
measured one after the other (bench/run) differ by the machine's drift as much as by their own cost. Here both
servers run at once, pinned to the same CPU, each loaded by its own h2load (both pinned to the other CPU) with
bench/run's scenario; whatever slows the CPU slows both alike. Each server's throughput per second of its own CPU
time (calls ÷ the CPU time of its process group over the measured window) is what it costs; the ratio of the two is
the result, per round and as a median. The scheduler shares the CPU between the two; the raw req/s ratio is shown
too, but the per-CPU-second one does not depend on how evenly it was shared.

    bench/together [--rounds 8] [--duration 10] [--scenario small-unary-many-streams] BASE=COMMAND OTHER=COMMAND

COMMAND as in bench/run ({port} is replaced). Writes the report to stdout. Loopback only; bounded in time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (bench/run.py: servers, h2load, the request frame)


def measure_round(servers: list[run.Server], scenario: dict, request: Path, args) -> list[dict]:
    """Loads every server at once for one measured window; each server's h2load result."""
    results: list[dict] = [{} for _ in servers]

    def load(i: int) -> None:
        server = servers[i]
        results[i] = run.run_h2load(server.port, scenario, request, args.duration, args.warm_up_time,
                                    args.load_cpu, None, server.proc.pid)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(len(servers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--duration", type=int, default=10, help="measured seconds per round")
    parser.add_argument("--warm-up-time", type=int, default=2, help="h2load's warm-up per round, seconds")
    parser.add_argument("--scenario", default="small-unary-many-streams")
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--load-cpu", default="1")
    parser.add_argument("servers", nargs=2, metavar="LABEL=COMMAND")
    args = parser.parse_args(argv)
    scenario = run.SCENARIOS[args.scenario]
    if scenario.get("kind") != "load":
        parser.error(f"{args.scenario} is not a load scenario")
    run.ensure_h2load()
    run.raise_fd_limit()
    labels = [spec.split("=", 1)[0] for spec in args.servers]
    per_round: list[list[dict]] = []
    with tempfile.TemporaryDirectory(prefix="herald-together-") as tmp:
        request = Path(tmp) / "request.bin"
        request.write_bytes(run.grpc_frame(scenario["payload"]))
        for n in range(1, args.rounds + 1):
            # A fresh pair each round, started in alternating order.
            order = list(range(2)) if n % 2 else [1, 0]
            servers = [run.Server(labels[i], args.servers[i].split("=", 1)[1], args.server_cpu,
                                  Path(tmp) / f"server-{i}.log") for i in range(2)]
            try:
                for i in order:
                    error = servers[i].start(60.0)
                    if error:
                        print(f"{labels[i]}: {error}", file=sys.stderr)
                        return 1
                results = measure_round(servers, scenario, request, args)
            finally:
                for server in servers:
                    server.stop()
            for label, result in zip(labels, results):
                if "error" in result or not result.get("server_cpu_s") or result.get("failed", 1):
                    print(f"round {n} {label}: unusable run {result}", file=sys.stderr)
                    return 1
            per_round.append(results)
            line = ", ".join(
                f"{label} {r['rps']:,.0f} req/s ({r['succeeded'] / r['server_cpu_s']:,.0f} per CPU-second)"
                for label, r in zip(labels, results))
            print(f"[together {time.strftime('%H:%M:%S')}] round {n}: {line}", file=sys.stderr)
            time.sleep(0.5)

    def ratios(metric) -> list[float]:
        return [metric(other) / metric(base) for base, other in per_round]

    by_cpu = ratios(lambda r: r["succeeded"] / r["server_cpu_s"])
    by_rps = ratios(lambda r: r["rps"])
    base, other = labels
    print(f"{base} and {other} at once on CPU {args.server_cpu}, load on CPU {args.load_cpu}: {args.scenario}, "
          f"{args.rounds} rounds x {args.duration} s")
    print(f"{other} / {base} calls per CPU-second, per round: [{', '.join(f'{r:.3f}' for r in by_cpu)}]")
    print(f"{other} / {base} req/s, per round:              [{', '.join(f'{r:.3f}' for r in by_rps)}]")
    print(f"median {other} / {base}: calls per CPU-second {statistics.median(by_cpu):.3f}, "
          f"req/s {statistics.median(by_rps):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
