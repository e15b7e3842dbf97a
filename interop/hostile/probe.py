"""What the runner watches on the server's side while an attack runs.

With `--server-pid`, the server process's resident memory (VmRSS in /proc/<pid>/status), its
open file descriptors (/proc/<pid>/fd, a proxy for its connections) and its CPU time
(/proc/<pid>/stat) are read before and after each attack, and the RSS is sampled every 100 ms
during it for the peak. With `--metrics-url`
(a herald admin endpoint on loopback), `herald_server_connections` and
`process_resident_memory_bytes` are read from its Prometheus text before and after.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import urllib.parse
import urllib.request
from typing import Optional

MIB = 1024 * 1024


def rss_bytes(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> Optional[float]:
    """User + system CPU time the process has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def fd_count(pid: int) -> Optional[int]:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def check_loopback_url(url: str) -> str:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"--metrics-url must point at loopback, not {host}")
    return url


def read_metrics(url: str) -> dict[str, float]:
    """Sums per metric name of the two series the runner reports; {} when unreachable."""
    wanted = ("herald_server_connections", "process_resident_memory_bytes")
    out: dict[str, float] = {}
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            text = response.read(4 << 20).decode(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in wanted:
            try:
                out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
            except ValueError:
                pass
    return out


class RssSampler(threading.Thread):
    """The peak RSS of `pid` while running (every 100 ms)."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pid = pid
        self.peak = rss_bytes(pid) or 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.1):
            self.peak = max(self.peak, rss_bytes(self.pid) or 0)

    def stop(self) -> int:
        self._stop_event.set()
        self.join(2)
        self.peak = max(self.peak, rss_bytes(self.pid) or 0)
        return self.peak
