#!/usr/bin/env python3
"""Run the hostile HTTP/2 peers (the attacks package) against a server on loopback, each beside
an honest client, and judge how the server held up.

    run.py --port N --plaintext [--attacks all | a,b,c]
    run.py --port N --ca CA --cert C --key K [--server-name localhost] [--attacks ...]
           [--server-pid PID] [--metrics-url http://127.0.0.1:P/metrics] [--seconds 10]

Run it with the interop virtualenv (interop/python/setup-venv installs h2, hyperframe, hpack):
    .venv-interop/bin/python interop/hostile/run.py --port ...

Against herald's demo (`herald demo --serve --state-dir D`), D/demo.json has the ports and the
client certificate: --ca D/ca.pem --cert D/user.demo.pem --key D/user.demo.key.

First a preflight health check (exit 2 if it fails). Then for each attack, in order: an honest
client (honest.py) starts its health checks and must succeed once; the attack runs on its own
connection, capped at --seconds of wall clock and its own frame/stream cap; the honest client
goes on for --settle seconds, then stops. One line per attack:

    PASS name: refused: <what the server did>   [honest ..., rss ...]
    PASS name: bounded: <how it stayed bounded> [honest ..., rss ...]
    FAIL name: <reason>                          [honest ..., rss ...]

then "N passed, M failed". An attack FAILs when the attack judges the server's reaction wrong,
when the honest client saw any failure during it, or (with --server-pid) when the server's RSS
grew by more than --max-rss-growth-mib (64 by default) from before the attack to its peak.
Exit code 0 only when nothing failed; 2 when the server could not be reached at all.

What each attack does and expects: attacks/__init__.py. To check the peers themselves, run them
against naive_server.py (plaintext, undefended): rapid_reset, ping_flood, settings_flood and
slow_preface must FAIL there.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from attacks import ATTACKS, Outcome  # noqa: E402
from honest import H2HealthConn, HonestClient  # noqa: E402
from peer import Target  # noqa: E402
from probe import (  # noqa: E402
    MIB,
    RssSampler,
    check_loopback_url,
    cpu_seconds,
    fd_count,
    read_metrics,
    rss_bytes,
)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="hostile HTTP/2 peers against a loopback server")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--plaintext", action="store_true", help="HTTP/2 with prior knowledge, no TLS")
    p.add_argument("--ca", help="CA certificate (PEM) that signed the server's certificate")
    p.add_argument("--cert", help="client certificate (PEM)")
    p.add_argument("--key", help="client private key (PEM)")
    p.add_argument("--server-name", default="localhost", help="TLS server name (SNI, verified)")
    p.add_argument("--attacks", default="all", help=f"all, or some of: {','.join(ATTACKS)}")
    p.add_argument("--seconds", type=float, default=10.0, help="wall-clock cap of each attack")
    p.add_argument("--settle", type=float, default=1.0, help="honest calls after each attack (s)")
    p.add_argument("--honest-timeout", type=float, default=5.0, help="deadline of a health check")
    p.add_argument("--server-pid", type=int, help="server process, for RSS and open fds")
    p.add_argument("--max-rss-growth-mib", type=float, default=64.0)
    p.add_argument("--metrics-url", type=check_loopback_url, help="herald admin /metrics")
    args = p.parse_args()
    if args.plaintext == bool(args.ca):
        p.error("give either --plaintext or --ca (with --cert and --key for mutual TLS)")
    if bool(args.cert) != bool(args.key):
        p.error("--cert and --key go together")
    names = [a.strip() for a in args.attacks.split(",") if a.strip()]
    if args.attacks == "all":
        names = list(ATTACKS)
    unknown = [n for n in names if n not in ATTACKS]
    if unknown:
        p.error(f"unknown attack(s): {', '.join(unknown)}")
    args.names = names
    return args


def run_bounded(name: str, target: Target, seconds: float) -> Outcome:
    """Run one attack in a thread; a peer that overstays its cap is a bug here, reported as FAIL."""
    result: list[Outcome] = []

    def body() -> None:
        try:
            result.append(ATTACKS[name](target, seconds=seconds))
        except Exception as e:  # the peer itself broke, or the handshake failed
            result.append(Outcome(False, f"attack could not run: {type(e).__name__}: {e}"))

    thread = threading.Thread(target=body, name=name, daemon=True)
    thread.start()
    thread.join(seconds + 15)
    if not result:
        return Outcome(False, f"the attack peer did not stop within {seconds + 15:.0f} s (peer bug)")
    return result[0]


def preflight(target: Target, timeout: float) -> Optional[str]:
    try:
        conn = H2HealthConn(target, timeout)
        try:
            conn.check(timeout)
        finally:
            conn.close()
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return None


def server_side(args: argparse.Namespace) -> dict[str, Optional[float]]:
    out: dict[str, Optional[float]] = {}
    if args.server_pid:
        out["rss"] = rss_bytes(args.server_pid)
        out["fds"] = fd_count(args.server_pid)
        out["cpu"] = cpu_seconds(args.server_pid)
    if args.metrics_url:
        metrics = read_metrics(args.metrics_url)
        out["conns"] = metrics.get("herald_server_connections")
        out["metrics_rss"] = metrics.get("process_resident_memory_bytes")
    return out


def describe_server(before: dict, after: dict, peak: Optional[int]) -> str:
    parts = []
    if before.get("rss") is not None and after.get("rss") is not None:
        parts.append(
            f"rss {before['rss'] / MIB:.1f}->{after['rss'] / MIB:.1f} MiB (peak {(peak or 0) / MIB:.1f})"
        )
    if before.get("cpu") is not None and after.get("cpu") is not None:
        parts.append(f"server cpu {after['cpu'] - before['cpu']:.2f} s")
    if before.get("fds") is not None and after.get("fds") is not None:
        parts.append(f"fds {before['fds']}->{after['fds']}")
    if before.get("conns") is not None or after.get("conns") is not None:
        parts.append(f"herald_server_connections {before.get('conns')}->{after.get('conns')}")
    if before.get("metrics_rss") is not None and after.get("metrics_rss") is not None:
        rss = f"{before['metrics_rss'] / MIB:.1f}->{after['metrics_rss'] / MIB:.1f} MiB"
        parts.append(f"process_resident_memory {rss}")
    return "; ".join(parts)


def main() -> int:
    args = parse_args()
    target = Target(
        port=args.port,
        ca=args.ca,
        cert=args.cert,
        key=args.key,
        server_name=args.server_name,
    )
    problem = preflight(target, args.honest_timeout)
    if problem:
        print(f"the server does not answer a health check on 127.0.0.1:{args.port}: {problem}")
        return 2
    passed = failed = 0
    for name in args.names:
        before = server_side(args)
        sampler = RssSampler(args.server_pid) if args.server_pid else None
        if sampler:
            sampler.start()
        honest = HonestClient(target, call_timeout=args.honest_timeout)
        honest.start()
        if not honest.wait_first(args.honest_timeout + target.connect_timeout):
            honest.stop()
            outcome = Outcome(False, f"the honest client failed before the attack: {honest.failures[:1]}")
        else:
            started = time.monotonic()
            outcome = run_bounded(name, target, args.seconds)
            outcome.detail += f" [attack {time.monotonic() - started:.1f} s]"
            time.sleep(args.settle)
            honest.stop()
        peak = sampler.stop() if sampler else None
        time.sleep(0.3)  # let the server drop the attack's connection before counting fds
        after = server_side(args)
        notes = [honest.summary()]
        if honest.failures:
            outcome.passed = False
            shown = "; ".join(honest.failures[:3])
            outcome.detail += f"; the honest client failed {len(honest.failures)} call(s): {shown}"
        if peak is not None and before.get("rss") is not None:
            growth = (peak - before["rss"]) / MIB
            if growth > args.max_rss_growth_mib:
                outcome.passed = False
                outcome.detail += f"; server RSS grew {growth:.0f} MiB (> {args.max_rss_growth_mib:.0f})"
        server = describe_server(before, after, peak)
        if server:
            notes.append(server)
        verdict = "PASS" if outcome.passed else "FAIL"
        print(f"{verdict} {name}: {outcome.detail} [{'; '.join(notes)}]", flush=True)
        passed += outcome.passed
        failed += not outcome.passed
    print(f"{passed} passed, {failed} failed")
    sys.stdout.flush()
    # A stuck peer thread (reported above) must not keep the process alive.
    os._exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    sys.exit(main())
