"""The raw HTTP/2 connection the hostile peers attack with, on loopback only.

A `Target` says where the server is (127.0.0.1:port) and how to reach it: plaintext HTTP/2 with
prior knowledge, or TLS with Python's `ssl` (client certificate, CA, ALPN "h2", server name
"localhost" by default). `RawConn` opens one connection, does the HTTP/2 handshake (preface,
SETTINGS, ACK of the server's SETTINGS) and then sends whatever bytes an attack builds with
hyperframe — including frames that no well-behaved HTTP/2 library would agree to send — while it
parses what the server answers with hyperframe and hpack: GOAWAY (code, last stream id, debug
data), RST_STREAM per stream, response headers and trailers, PING and SETTINGS acknowledgements,
WINDOW_UPDATEs, and the end of the connection.

Every operation is bounded by the connection's deadline (wall clock), so an attack built on it
stops by itself. The socket is non-blocking and driven by select(): one thread, no concurrent use
of the SSL object. `send(..., read=False)` writes without reading anything, which is how the
floods leave the server's acknowledgements unread; `stall=` then reports when the server has
stopped taking bytes (TCP backpressure) instead of waiting forever.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import hpack
from h2.errors import ErrorCodes
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEALTH_PATH = "/grpc.health.v1.Health/Check"
# An empty grpc.health.v1.HealthCheckRequest in a gRPC frame: uncompressed, length 0.
EMPTY_GRPC_MESSAGE = b"\x00\x00\x00\x00\x00"
# Our own receive buffer, kept small so that leaving the server's frames unread pushes back on
# the server at once instead of after megabytes of kernel buffering.
SMALL_RCVBUF = 16 * 1024
SETTING_NAMES = {
    0x1: "HEADER_TABLE_SIZE",
    0x2: "ENABLE_PUSH",
    0x3: "MAX_CONCURRENT_STREAMS",
    0x4: "INITIAL_WINDOW_SIZE",
    0x5: "MAX_FRAME_SIZE",
    0x6: "MAX_HEADER_LIST_SIZE",
    0x8: "ENABLE_CONNECT_PROTOCOL",
}


def code_name(code: int) -> str:
    """An HTTP/2 error code by name (ENHANCE_YOUR_CALM), or its number when unknown."""
    try:
        return ErrorCodes(code).name
    except ValueError:
        return f"0x{code:x}"


@dataclass
class Target:
    """Where the server under attack is and how to talk to it."""

    port: int
    host: str = "127.0.0.1"
    ca: Optional[str] = None
    cert: Optional[str] = None
    key: Optional[str] = None
    server_name: str = "localhost"
    connect_timeout: float = 5.0

    def __post_init__(self) -> None:
        if not ipaddress.ip_address(self.host).is_loopback:
            raise ValueError(f"the hostile peers only attack loopback, not {self.host}")

    @property
    def tls(self) -> bool:
        return self.ca is not None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def authority(self) -> str:
        return f"{self.server_name if self.tls else self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert:
            ctx.load_cert_chain(self.cert, self.key)
        ctx.set_alpn_protocols(["h2"])
        return ctx

    def open_socket(self, rcvbuf: Optional[int] = None) -> socket.socket:
        """A connected socket, TLS handshake done and ALPN h2 checked; blocking, with timeout."""
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(self.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.connect((self.host, self.port))
            if not self.tls:
                return sock
            tls = self.ssl_context().wrap_socket(sock, server_hostname=self.server_name)
        except BaseException:
            sock.close()
            raise
        if tls.selected_alpn_protocol() != "h2":
            tls.close()
            raise ConnectionError(f"ALPN chose {tls.selected_alpn_protocol()!r}, not h2")
        return tls

    def request_headers(self, path: str = HEALTH_PATH) -> list[tuple[bytes, bytes]]:
        """The headers of a gRPC unary call to `path`."""
        return [
            (b":method", b"POST"),
            (b":scheme", self.scheme.encode()),
            (b":path", path.encode()),
            (b":authority", self.authority.encode()),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
        ]


@dataclass
class Response:
    """What the server sent on one stream."""

    headers: Optional[dict[str, str]] = None
    trailers: Optional[dict[str, str]] = None
    data: int = 0
    ended: bool = False

    @property
    def status(self) -> Optional[str]:
        return (self.headers or {}).get(":status")

    @property
    def grpc_status(self) -> Optional[str]:
        for block in (self.trailers, self.headers):
            if block and "grpc-status" in block:
                return block["grpc-status"]
        return None

    def describe(self) -> str:
        parts = [f":status {self.status}"]
        if self.grpc_status is not None:
            parts.append(f"grpc-status {self.grpc_status}")
            message = (self.trailers or self.headers or {}).get("grpc-message")
            if message:
                parts.append(repr(message[:80]))
        return ", ".join(parts)


@dataclass
class GoAway:
    code: int
    last_stream_id: int
    debug: bytes

    def describe(self) -> str:
        text = f"GOAWAY {code_name(self.code)} (last stream {self.last_stream_id}"
        if self.debug:
            text += f", debug {self.debug[:60]!r}"
        return text + ")"


@dataclass
class SendResult:
    """How a send ended: "ok" (all written), "stalled", "closed" or "deadline"; bytes written."""

    how: str
    sent: int


@dataclass
class RawConn:
    """One HTTP/2 connection speaking raw frames. Use as a context manager."""

    target: Target
    deadline: float
    rcvbuf: Optional[int] = None
    sock: Optional[socket.socket] = None
    server_settings: dict[int, int] = field(default_factory=dict)
    goaway: Optional[GoAway] = None
    closed: Optional[str] = None
    resets: dict[int, int] = field(default_factory=dict)
    responses: dict[int, Response] = field(default_factory=dict)
    ping_acks: int = 0
    settings_acks: int = 0
    window_updates: int = 0
    conn_window: int = 65535
    stream_windows: dict[int, int] = field(default_factory=dict)
    frames_in: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    _inbuf: bytearray = field(default_factory=bytearray)
    _outbox: bytearray = field(default_factory=bytearray)
    _pending: Optional[memoryview] = None  # a chunk the socket refused, to retry unchanged
    _block: Optional[tuple[int, int, bytearray]] = None  # (stream, flags of HEADERS, fragments)
    _decoder: hpack.Decoder = field(default_factory=hpack.Decoder)
    encoder: hpack.Encoder = field(default_factory=hpack.Encoder)

    # --- setup -----------------------------------------------------------------------------

    def __enter__(self) -> "RawConn":
        self.sock = self.target.open_socket(rcvbuf=self.rcvbuf)
        self.sock.setblocking(False)
        self._decoder.max_header_list_size = 1 << 24
        settings = SettingsFrame(0, settings={SettingsFrame.ENABLE_PUSH: 0})
        self.send(PREFACE + settings.serialize())
        self.pump(until=lambda: bool(self.server_settings) or self.goaway is not None)
        if not self.server_settings and not self.closed:
            raise ConnectionError("the server sent no SETTINGS before the deadline")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass

    def setting(self, ident: int, default: Optional[int] = None) -> Optional[int]:
        return self.server_settings.get(ident, default)

    def describe_settings(self) -> str:
        return ", ".join(
            f"{SETTING_NAMES.get(k, hex(k))}={v}" for k, v in sorted(self.server_settings.items())
        )

    # --- frames out --------------------------------------------------------------------------

    def headers_frames(
        self,
        stream_id: int,
        block: bytes,
        end_stream: bool = False,
        end_headers: bool = True,
    ) -> bytes:
        """HEADERS (+ CONTINUATIONs when `block` exceeds the server's max frame size)."""
        size = self.setting(SettingsFrame.MAX_FRAME_SIZE, 16384) or 16384
        chunks = [block[i : i + size] for i in range(0, len(block), size)] or [b""]
        out = bytearray()
        for i, chunk in enumerate(chunks):
            frame: Frame = HeadersFrame(stream_id, data=chunk) if i == 0 else ContinuationFrame(
                stream_id, data=chunk
            )
            if i == 0 and end_stream:
                frame.flags.add("END_STREAM")
            if i == len(chunks) - 1 and end_headers:
                frame.flags.add("END_HEADERS")
            out += frame.serialize()
        return bytes(out)

    def request(self, stream_id: int, end_stream: bool = False, path: str = HEALTH_PATH) -> bytes:
        """The HEADERS frame of a gRPC call (hpack-encoded with this connection's encoder)."""
        block = self.encoder.encode(self.target.request_headers(path))
        return self.headers_frames(stream_id, block, end_stream=end_stream)

    # --- I/O -----------------------------------------------------------------------------------

    def send(self, data: bytes, read: bool = True, stall: Optional[float] = None) -> SendResult:
        """Write `data` before the deadline. With read=False nothing is read meanwhile; with
        `stall` (seconds), give up when the server has taken no byte for that long.

        The result counts the bytes committed: a chunk that the socket refused halfway stays
        pending and goes out first on the next send (OpenSSL wants a refused write retried with
        the very same bytes), so the server gets every committed byte, and nothing else before."""
        assert self.sock is not None
        if self._outbox:
            data, self._outbox = bytes(self._outbox) + data, bytearray()
        view = memoryview(data)
        pos = 0
        last_progress = time.monotonic()
        while self._pending is not None or pos < len(view):
            if self.closed:
                return SendResult("closed", pos)
            now = time.monotonic()
            if now >= self.deadline:
                return SendResult("deadline", pos)
            if stall is not None and now - last_progress >= stall:
                return SendResult("stalled", pos)
            if self._pending is None:
                self._pending = view[pos : pos + 65536]
                pos += len(self._pending)
            if read and select.select([self.sock], [], [], 0)[0]:
                self._read_available()  # a GOAWAY read now is not lost to a reset later
                continue
            try:
                n = self.sock.send(self._pending)
                self.bytes_out += n
                self._pending = self._pending[n:] if n < len(self._pending) else None
                last_progress = now
                continue
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                pass
            except (OSError, ssl.SSLError) as e:
                if read:
                    self._read_available()  # what the server said before it closed, if readable
                self._close(f"send failed: {type(e).__name__}: {e}")
                return SendResult("closed", pos)
            wait = min(0.05, max(0.0, self.deadline - now))
            readable, _, _ = select.select([self.sock] if read else [], [self.sock], [], wait)
            if readable:
                self._read_available()
        return SendResult("ok", pos)

    def pump(self, seconds: Optional[float] = None, until: Callable[[], bool] = lambda: False) -> None:
        """Read and parse frames until `until()` holds, the connection ends, `seconds` pass or the
        deadline comes; `seconds=0` reads what is already there. Acknowledges the server's
        SETTINGS and PINGs as a client must."""
        assert self.sock is not None
        end = self.deadline if seconds is None else min(self.deadline, time.monotonic() + seconds)
        while not until() and not self.closed:
            if self._outbox or self._pending is not None:
                self.send(b"")
            remaining = end - time.monotonic()
            pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
            if pending or select.select([self.sock], [], [], max(0.0, min(0.05, remaining)))[0]:
                self._read_available()
            if remaining <= 0:
                return

    def owe(self, data: bytes, sent: int, frame_len: int) -> None:
        """After a send of whole `frame_len`-byte frames stopped after `sent` bytes, owe the
        server the rest of the frame cut in half, so that whatever is sent next stays framed."""
        rest = (frame_len - sent % frame_len) % frame_len
        self._outbox[:0] = data[sent : sent + rest]

    def _read_available(self, limit: int = 1 << 20) -> None:
        assert self.sock is not None
        got = 0
        while got < limit and not self.closed and time.monotonic() < self.deadline:
            try:
                chunk = self.sock.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                return
            except (OSError, ssl.SSLError) as e:
                self._close(f"{type(e).__name__}: {e}")
                return
            if not chunk:
                self._close("EOF")
                return
            got += len(chunk)
            self.bytes_in += len(chunk)
            self._inbuf += chunk
            self._parse()

    def _close(self, why: str) -> None:
        if not self.closed:
            self.closed = why

    # --- frames in -------------------------------------------------------------------------

    def _parse(self) -> None:
        buf = self._inbuf
        while len(buf) >= 9:
            length = int.from_bytes(buf[0:3], "big")
            if len(buf) < 9 + length:
                return
            kind, flags = buf[3], buf[4]
            if kind in (0x4, 0x6) and flags & 0x1:  # SETTINGS or PING ACK: counted, no parse
                del buf[: 9 + length]
                self.frames_in += 1
                if kind == 0x4:
                    self.settings_acks += 1
                else:
                    self.ping_acks += 1
                continue
            frame, _ = Frame.parse_frame_header(memoryview(bytes(buf[:9])))
            frame.parse_body(memoryview(bytes(buf[9 : 9 + length])))
            del buf[: 9 + length]
            self.frames_in += 1
            self._on_frame(frame)

    def _on_frame(self, frame: Frame) -> None:
        if isinstance(frame, SettingsFrame):
            if "ACK" in frame.flags:
                self.settings_acks += 1
            else:
                self.server_settings.update(frame.settings)
                self._outbox += SettingsFrame(0, flags=["ACK"]).serialize()
        elif isinstance(frame, PingFrame):
            if "ACK" in frame.flags:
                self.ping_acks += 1
            else:
                self._outbox += PingFrame(0, opaque_data=frame.opaque_data, flags=["ACK"]).serialize()
        elif isinstance(frame, GoAwayFrame):
            self.goaway = GoAway(frame.error_code, frame.last_stream_id, bytes(frame.additional_data))
        elif isinstance(frame, RstStreamFrame):
            self.resets[frame.stream_id] = frame.error_code
        elif isinstance(frame, WindowUpdateFrame):
            self.window_updates += 1
            if frame.stream_id == 0:
                self.conn_window += frame.window_increment
            else:
                self.stream_windows[frame.stream_id] = (
                    self.stream_window(frame.stream_id) + frame.window_increment
                )
        elif isinstance(frame, HeadersFrame):
            self._block = (frame.stream_id, 1 if "END_STREAM" in frame.flags else 0, bytearray(frame.data))
            if "END_HEADERS" in frame.flags:
                self._end_block()
        elif isinstance(frame, ContinuationFrame) and self._block is not None:
            self._block[2].extend(frame.data)
            if "END_HEADERS" in frame.flags:
                self._end_block()
        elif isinstance(frame, DataFrame):
            response = self.responses.setdefault(frame.stream_id, Response())
            response.data += len(frame.data)
            if "END_STREAM" in frame.flags:
                response.ended = True
            if frame.flow_controlled_length:
                # Give the window back at once: the attacks never want to be throttled.
                update = WindowUpdateFrame(0, window_increment=frame.flow_controlled_length)
                self._outbox += update.serialize()

    def _end_block(self) -> None:
        assert self._block is not None
        stream_id, end_stream, block = self._block
        self._block = None
        fields = self._decoder.decode(bytes(block), raw=True)
        headers = {k.decode(): v.decode(errors="replace") for k, v in fields}
        response = self.responses.setdefault(stream_id, Response())
        if response.headers is None:
            response.headers = headers
        else:
            response.trailers = headers
        if end_stream:
            response.ended = True

    def stream_window(self, stream_id: int) -> int:
        initial = self.setting(SettingsFrame.INITIAL_WINDOW_SIZE, 65535)
        return self.stream_windows.get(stream_id, initial if initial is not None else 65535)

    # --- what happened -----------------------------------------------------------------------

    def ended(self) -> bool:
        """Whether the server ended the connection: GOAWAY sent, or the connection closed."""
        return self.goaway is not None or self.closed is not None

    def describe_end(self) -> str:
        if self.goaway is not None:
            text = self.goaway.describe()
            return text + (f", then closed ({self.closed})" if self.closed else "")
        return f"connection closed ({self.closed})"

