"""What an attack returns, and the timing constants the attacks share."""

from __future__ import annotations

import time
from dataclasses import dataclass

# How long the server may take no byte of a flood before the attack calls it backpressure.
STALL_SECONDS = 1.5
# The part of an attack's cap kept for reading the server's answers after a flood.
DRAIN_SECONDS = 3.0
KIB = 1024
MIB = 1024 * 1024


@dataclass
class Outcome:
    passed: bool
    detail: str


def refused(detail: str) -> Outcome:
    return Outcome(True, f"refused: {detail}")


def bounded(detail: str) -> Outcome:
    return Outcome(True, f"bounded: {detail}")


def failed(detail: str) -> Outcome:
    return Outcome(False, detail)


def since(start: float) -> str:
    took = time.monotonic() - start
    return f"{took:.1f} s" if took >= 1 else f"{took * 1000:.0f} ms"
