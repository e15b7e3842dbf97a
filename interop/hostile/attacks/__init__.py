"""Hostile HTTP/2 peers: one function per attack, each on its own connection, bounded.

Every attack takes a `Target` (peer.py), `seconds` (its wall-clock cap, 10 s by default) and a
cap on what it sends (`limit`: frames or streams), stops by itself at whichever comes first, and
returns an `Outcome`: passed or not, and what the server did. A pass is one of two kinds, named
first in the detail:

  "refused: ..."  the server ended the attack: GOAWAY (with its error code), RST_STREAM
                  (REFUSED_STREAM, ENHANCE_YOUR_CALM, ...), an HTTP 431, or it closed the connection;
  "bounded: ..."  the server absorbed something a conforming server may absorb, and demonstrably
                  within bounds (TCP backpressure, flow control, a request answered normally).

The attacks and what they expect of a well-defended server:

  stream_cap          Opens MAX_CONCURRENT_STREAMS + 64 streams at once (HEADERS, no END_STREAM).
                      Expects RST_STREAM(REFUSED_STREAM) on the streams over the advertised cap (or
                      a GOAWAY PROTOCOL_ERROR). FAIL if the server advertises no cap or serves them.
  rapid_reset         CVE-2023-44487: HEADERS then RST_STREAM(CANCEL) at once, up to 10,000 streams.
                      Expects a GOAWAY (h2: ENHANCE_YOUR_CALM) long before the cap. FAIL if absorbed.
  rapid_reset_paced   The same, paced so the server accepts each stream before its reset: HEADERS
                      for 20 streams, 5 ms, their RST_STREAMs; up to 10,000 streams. Refused on a
                      GOAWAY; otherwise "bounded" as long as the honest client and the server's
                      memory are unharmed (each reset stream's work is cancelled at once).
  reset_flood         CVE-2019-9514: up to 20,000 malformed requests (no :method), each of which the
                      server must reset. Expects a GOAWAY once its cap on such resets is reached
                      (h2: max_local_error_reset_streams). FAIL if it resets stream after stream.
  continuation_flood  CVE-2024-27316 style: HEADERS without END_HEADERS, then up to 100,000
                      CONTINUATION frames of 64 bytes of header data, never ending the block.
                      Expects a GOAWAY (or close) once the block passes the header-list limit or
                      a cap on CONTINUATION frames.
  continuation_empty  The same with empty CONTINUATION frames, which never grow the block: expects
                      a GOAWAY on the number of frames alone (h2: ENHANCE_YOUR_CALM).
  oversized_headers   One request whose header list is 256 KiB (64 headers of 4 KiB), far above a
                      16 KiB SETTINGS_MAX_HEADER_LIST_SIZE, sent as HEADERS + CONTINUATIONs.
                      Expects 431, RST_STREAM or GOAWAY. FAIL if the request is served.
  hpack_bomb          A 4 KB header put in the HPACK dynamic table, then referenced 12,000 times by a
                      one-byte index: 16 KB on the wire, ~48 MB decoded. Expects 431/RST/GOAWAY.
  ping_flood          Up to 2,000,000 PINGs with none of the ACKs read (CVE-2019-9512). Passes
                      refused on a GOAWAY, bounded when the server stops reading while its ACKs are
                      unread (TCP backpressure: it does not queue ACKs). FAIL if it keeps reading.
  settings_flood      The same with up to 2,000,000 SETTINGS frames, ACKs unread (CVE-2019-9515).
  tiny_data           A 20,000-byte request body sent as 20,000 one-byte DATA frames. Legal; passes
                      bounded when the request is answered normally (flow control bounds it), or
                      refused on RST/GOAWAY. FAIL on no answer within the cap.
  empty_data          Up to 200,000 zero-length DATA frames on one stream (CVE-2019-9518), then the
                      request's body. They cost no flow-control window; passes refused on a
                      GOAWAY/RST, bounded when the request is still answered normally (the runner's
                      memory check then decides).
  slow_preface        After the TLS handshake, the HTTP/2 preface one byte a second (slowloris).
                      Expects the server to close the connection within the cap (a timeout on the
                      preface/handshake). FAIL if the connection is still open when the cap ends.

Modules: streams (stream_cap, rapid_reset, rapid_reset_paced, reset_flood), headers
(continuation_*, oversized_headers, hpack_bomb), floods (ping_flood, settings_flood), data
(tiny_data, empty_data), preface (slow_preface); outcome has Outcome and the shared constants.

The runner (run.py) adds to each: an honest client's health checks beside the attack (any failure
fails the attack) and, with --server-pid, the server's RSS (growth > 64 MiB fails it).
"""

from __future__ import annotations

from typing import Callable

from .data import empty_data, tiny_data
from .floods import ping_flood, settings_flood
from .headers import continuation_empty, continuation_flood, hpack_bomb, oversized_headers
from .outcome import Outcome
from .preface import slow_preface
from .streams import rapid_reset, rapid_reset_paced, reset_flood, stream_cap

__all__ = ["ATTACKS", "Outcome"]

ATTACKS: dict[str, Callable[..., Outcome]] = {
    "stream_cap": stream_cap,
    "rapid_reset": rapid_reset,
    "rapid_reset_paced": rapid_reset_paced,
    "reset_flood": reset_flood,
    "continuation_flood": continuation_flood,
    "continuation_empty": continuation_empty,
    "oversized_headers": oversized_headers,
    "hpack_bomb": hpack_bomb,
    "ping_flood": ping_flood,
    "settings_flood": settings_flood,
    "tiny_data": tiny_data,
    "empty_data": empty_data,
    "slow_preface": slow_preface,
}
