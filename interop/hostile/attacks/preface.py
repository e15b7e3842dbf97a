"""A connection that never finishes its HTTP/2 preface (slowloris)."""

from __future__ import annotations

import socket
import ssl
import time

from peer import PREFACE, Target

from .outcome import Outcome, failed, refused, since

# A server should close a connection whose preface has not come within 10 s (herald's limit,
# counted from the end of the TLS handshake). The attack waits this much longer before it
# calls the connection unbounded, so the two timers never race.
MARGIN = 5.0
SERVER_LIMIT = 10.0


# === slow_preface ===


def slow_preface(target: Target, seconds: float = 10.0, limit: int = 24) -> Outcome:
    """After the TLS handshake, the 24-byte HTTP/2 preface at one byte a second (slowloris)."""
    start = time.monotonic()
    sock = target.open_socket()
    try:
        sock.settimeout(0.05)
        dribbled, closed = 0, ""
        deadline = start + max(seconds, SERVER_LIMIT + MARGIN)
        next_byte = time.monotonic()
        while time.monotonic() < deadline and not closed:
            if time.monotonic() >= next_byte and dribbled < min(limit, len(PREFACE)):
                try:
                    sock.sendall(PREFACE[dribbled : dribbled + 1])
                    dribbled += 1
                except OSError as e:
                    closed = f"send failed: {type(e).__name__}"
                next_byte += 1.0
            try:
                if not sock.recv(65536):  # the server's SETTINGS may come; EOF is what counts
                    closed = "EOF"
            except (socket.timeout, ssl.SSLWantReadError):
                pass
            except OSError as e:
                closed = f"{type(e).__name__}: {e}"
        facts = f"{dribbled} of the {len(PREFACE)} preface bytes sent, one a second"
        if closed:
            return refused(f"connection closed ({closed}) after {since(start)}; {facts}")
        return failed(
            f"the connection was still open after {since(start)}: no timeout on the HTTP/2 "
            f"preface ({facts})"
        )
    finally:
        sock.close()
