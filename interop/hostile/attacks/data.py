"""Request bodies in abusive framing: one-byte DATA frames, empty DATA frames."""

from __future__ import annotations

import time

from hyperframe.frame import DataFrame

from peer import EMPTY_GRPC_MESSAGE, RawConn, Target, code_name

from .outcome import STALL_SECONDS, Outcome, bounded, failed, refused, since


# === tiny_data, empty_data ===


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out)


def _grpc_body(size: int) -> bytes:
    """A gRPC frame of about `size` bytes holding a HealthCheckRequest with service "" and an
    unknown field 15 as padding (skipped by the decoder, so the check still answers SERVING)."""
    pad = max(0, size - 5 - 1 - len(_varint(size)))
    message = b"\x7a" + _varint(pad) + b"a" * pad  # field 15, length-delimited
    return b"\x00" + len(message).to_bytes(4, "big") + message


def _answered(c: RawConn) -> bool:
    """Whether stream 1 has had its answer: a response ended, a reset, or the connection ended."""
    response = c.responses.get(1)
    return c.ended() or 1 in c.resets or bool(response and response.ended)


def _judge_answer(c: RawConn, facts: str) -> Outcome:
    r = c.responses.get(1)
    if 1 in c.resets:
        return refused(f"RST_STREAM {code_name(c.resets[1])}; {facts}")
    if c.ended():
        return refused(f"{c.describe_end()}; {facts}")
    if r is not None and r.ended and r.grpc_status == "0":
        return bounded(f"absorbed, request answered normally ({r.describe()}); {facts}")
    if r is not None and r.ended:
        return refused(f"request refused ({r.describe()}); {facts}")
    return failed(f"no answer within the cap; {facts}")


def tiny_data(target: Target, seconds: float = 10.0, limit: int = 20_000) -> Outcome:
    """A `limit`-byte request body in one-byte DATA frames, within flow control."""
    start = time.monotonic()
    with RawConn(target, start + seconds) as c:
        body = _grpc_body(limit)
        frames = {}  # one serialization per distinct (byte, last)
        c.send(c.request(1))
        i = 0
        while i < len(body) and not c.ended() and time.monotonic() < c.deadline:
            room = min(c.conn_window, c.stream_window(1), 1000, len(body) - i)
            if room <= 0:
                c.pump(seconds=0.05)
                continue
            batch = bytearray()
            for j in range(i, i + room):
                key = (body[j], j == len(body) - 1)
                if key not in frames:
                    flags = ["END_STREAM"] if key[1] else []
                    frames[key] = DataFrame(1, data=bytes([key[0]]), flags=flags).serialize()
                batch += frames[key]
            if c.send(bytes(batch)).how != "ok":
                break
            i += room
            c.conn_window -= room
            c.stream_windows[1] = c.stream_window(1) - room
            c.pump(seconds=0)
        c.pump(until=lambda: _answered(c))
        facts = f"{i} one-byte DATA frames sent, {c.window_updates} WINDOW_UPDATEs received"
        return _judge_answer(c, f"{facts}, {since(start)}")


def empty_data(target: Target, seconds: float = 10.0, limit: int = 200_000) -> Outcome:
    """Up to `limit` empty DATA frames on one open stream, then the request's body."""
    start = time.monotonic()
    with RawConn(target, start + seconds) as c:
        c.send(c.request(1))
        frame = DataFrame(1, data=b"").serialize()
        sent, how = 0, "ok"
        flood_end = start + seconds - 2.0  # leave time for the answer
        while sent < limit and not c.ended() and time.monotonic() < flood_end:
            data = frame * min(10_000, limit - sent)
            result = c.send(data, stall=STALL_SECONDS)
            sent += result.sent // len(frame)
            how = result.how
            if how != "ok":
                c.owe(data, result.sent, len(frame))
                break
            c.pump(seconds=0)
        took = since(start)
        if not c.ended() and 1 not in c.resets:
            c.send(DataFrame(1, data=EMPTY_GRPC_MESSAGE, flags=["END_STREAM"]).serialize())
            c.pump(until=lambda: _answered(c))
        stalled = " (the server stopped reading for a while)" if how == "stalled" else ""
        return _judge_answer(c, f"{sent} empty DATA frames in {took}{stalled}")
