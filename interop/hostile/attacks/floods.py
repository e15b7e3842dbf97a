"""Floods of control frames whose acknowledgements are left unread: PING, SETTINGS."""

from __future__ import annotations

import time
from typing import Callable

from hyperframe.frame import PingFrame, SettingsFrame

from peer import SMALL_RCVBUF, RawConn, Target

from .outcome import DRAIN_SECONDS, MIB, STALL_SECONDS, Outcome, bounded, failed, refused, since


# === ping_flood, settings_flood ===


def _unread_flood(
    target: Target,
    seconds: float,
    limit: int,
    frame: bytes,
    kind: str,
    acks: Callable[[RawConn], int],
) -> Outcome:
    """Send `frame` up to `limit` times without reading, then read and judge."""
    start = time.monotonic()
    with RawConn(target, start + seconds, rcvbuf=SMALL_RCVBUF) as c:
        c.pump(seconds=0.2)  # the handshake's SETTINGS ACK and WINDOW_UPDATE, read once
        acks_before = acks(c)
        sent, how = 0, "ok"
        drain_at = start + max(seconds - DRAIN_SECONDS, seconds / 2)  # the flood's share
        c.deadline = drain_at
        while sent < limit:
            data = frame * min(10_000, limit - sent)
            result = c.send(data, read=False, stall=STALL_SECONDS)
            sent += result.sent // len(frame)
            how = result.how
            if how != "ok":
                c.owe(data, result.sent, len(frame))
                sent += 1 if result.sent % len(frame) else 0
                break
        took = since(start)
        # Now read: the GOAWAY, if any, and the ACKs the server has been holding back.
        c.deadline = max(start + seconds, time.monotonic() + 0.5)
        c.pump(until=lambda: c.ended() or acks(c) - acks_before >= sent)
        got = acks(c) - acks_before
        volume = f"{sent} {kind} frames ({sent * len(frame) / MIB:.1f} MiB) in {took}"
        if c.ended():
            return refused(f"{c.describe_end()} after {volume}; {got} ACKs read afterwards")
        if how == "stalled":
            return bounded(
                f"the server stopped reading after {volume} while its ACKs went unread "
                f"(TCP backpressure, no ACK queue); once read, it had sent {got} ACKs "
                f"before the cap"
            )
        if how == "closed":
            return refused(f"connection closed after {volume}")
        return failed(
            f"the server kept reading {volume} while none of its ACKs was read (no backpressure: "
            f"ACKs queued in memory?); {got} ACKs read afterwards before the cap"
        )


def ping_flood(target: Target, seconds: float = 10.0, limit: int = 2_000_000) -> Outcome:
    """Up to `limit` PINGs, none of the ACKs read until the flood ends."""
    frame = PingFrame(0, opaque_data=b"hostile!").serialize()
    return _unread_flood(target, seconds, limit, frame, "PING", lambda c: c.ping_acks)


def settings_flood(target: Target, seconds: float = 10.0, limit: int = 2_000_000) -> Outcome:
    """Up to `limit` SETTINGS frames (ENABLE_PUSH=0, a no-op), none of the ACKs read."""
    frame = SettingsFrame(0, settings={SettingsFrame.ENABLE_PUSH: 0}).serialize()
    return _unread_flood(target, seconds, limit, frame, "SETTINGS", lambda c: c.settings_acks)
