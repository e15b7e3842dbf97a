"""Idle HTTP/2 connections for bench/run's `idle-connections` scenario (see bench/README.md).

Each connection is set up the way a real gRPC client leaves it: the client preface and an empty SETTINGS frame,
the server's SETTINGS acknowledged, our SETTINGS acknowledged by the server, and one complete unary call
(bench.Echo/Call, its response read up to the trailers). Then nothing more is sent or read: the connection is
live and idle, and the server holds whatever it keeps per connection.

A hand-written client (standard library only): frames are built by hand, request headers are HPACK literals
without Huffman coding, and the server's header blocks are not decoded. The call counts as answered when its
echoed DATA is as long as the request's gRPC frame and its trailers (HEADERS with END_STREAM) arrived.
"""

from __future__ import annotations

import socket
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
STREAM = 1


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def hpack_string(value: bytes) -> bytes:
    """An HPACK string literal, no Huffman coding; short strings only (one length byte)."""
    if len(value) >= 127:
        raise ValueError("header too long for a one-byte HPACK length")
    return bytes([len(value)]) + value


def request(host: str, port: int, path: str, grpc_frame: bytes) -> bytes:
    """Everything a client sends to open a connection and make one unary call on stream 1."""
    block = (
        b"\x83"  # :method POST (static table 3)
        + b"\x86"  # :scheme http (static table 6)
        # Literals without indexing (RFC 7541 §6.2.2): name from the static table (:path 4, :authority 1) or new.
        + b"\x04" + hpack_string(path.encode())
        + b"\x01" + hpack_string(f"{host}:{port}".encode())
        + b"\x00" + hpack_string(b"content-type") + hpack_string(b"application/grpc")
        + b"\x00" + hpack_string(b"te") + hpack_string(b"trailers")
    )
    return (PREFACE + frame(SETTINGS, 0, 0) + frame(HEADERS, END_HEADERS, STREAM, block)
            + frame(DATA, END_STREAM, STREAM, grpc_frame))


def read_exact(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
    return bytes(data)


def open_idle(host: str, port: int, path: str, grpc_frame: bytes, timeout: float) -> socket.socket:
    """A connection that has completed the SETTINGS exchange and one call, left open and idle.

    Raises OSError (ConnectionError, socket.timeout) or ValueError when the server does not answer as it should.
    """
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        sock.sendall(request(host, port, path, grpc_frame))
        echoed, trailers, settings_acked = 0, False, False
        while not (trailers and settings_acked):
            length, kind, flags, stream = struct.unpack(">IBBI", b"\0" + read_exact(sock, 9))
            payload = read_exact(sock, length)
            stream &= 0x7FFF_FFFF
            if kind == SETTINGS and flags & ACK:
                settings_acked = True
            elif kind == SETTINGS:
                sock.sendall(frame(SETTINGS, ACK, 0))
            elif kind == PING and not flags & ACK:
                sock.sendall(frame(PING, ACK, 0, payload))
            elif kind == GOAWAY or (kind == RST_STREAM and stream == STREAM):
                raise ConnectionError(f"the server sent {'GOAWAY' if kind == GOAWAY else 'RST_STREAM'}")
            elif kind == DATA and stream == STREAM:
                padding = payload[0] + 1 if flags & 0x8 else 0
                echoed += length - padding
            elif kind == HEADERS and stream == STREAM and flags & END_STREAM:
                trailers = True
        if echoed != len(grpc_frame):
            raise ValueError(f"echoed {echoed} bytes, expected {len(grpc_frame)} (a gRPC error?)")
        return sock
    except BaseException:
        sock.close()
        raise


def still_open(sock: socket.socket) -> bool:
    """Whether the server still holds the connection open (no EOF, no reset), without consuming anything."""
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def open_many(host: str, port: int, path: str, grpc_frame: bytes, count: int, deadline: float,
              into: list[socket.socket]) -> None:
    """Opens `count` idle connections one after the other, appending each to `into` (so the caller closes them
    whatever happens). Raises on the first connection that fails, or when `deadline` (monotonic) passes."""
    for _ in range(count):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"only {len(into)} connections opened before the deadline")
        into.append(open_idle(host, port, path, grpc_frame, min(10.0, remaining)))
