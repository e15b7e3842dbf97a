"""What server.py and client.py share: the generated stubs, message decoding that sees
per-message compression, channel/server options and TLS file loading."""

from __future__ import annotations

import gzip
import sys
import zlib
from pathlib import Path
from typing import Any, Callable, NamedTuple

_GEN = Path(__file__).resolve().parent / "gen"
if not (_GEN / "herald_interop_pb").is_dir():
    sys.exit(f"{_GEN} is missing: run interop/python/setup-venv first")
sys.path.insert(0, str(_GEN))

# Re-exported for the peers: the messages and the empty message of package grpc.testing.
from herald_interop_pb import empty_pb2, messages_pb2  # noqa: E402

pb = messages_pb2
Empty = empty_pb2.Empty

TEST_SERVICE = "grpc.testing.TestService"
UNIMPLEMENTED_SERVICE = "grpc.testing.UnimplementedService"

# Metadata the interop server echoes back: the first as initial, the second as trailing metadata.
ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"

# gRPC's C core hides grpc-encoding from applications and decompresses messages before handing
# them over, so a grpcio peer cannot tell whether a message came compressed. With per-message
# decompression off, the core hands over the bytes as they came on the wire; Received/decoder
# below decompress them here and remember whether they had to. Used on both sides (server:
# expect_compressed; client: response_compressed / ResponseParameters.compressed).
COMMON_OPTIONS: list[tuple[str, Any]] = [("grpc.per_message_decompression", 0)]


class Received(NamedTuple):
    """A decoded message and whether it came compressed on the wire."""

    message: Any
    compressed: bool


def _zlib_header(raw: bytes) -> bool:
    # RFC 1950 header with a 32 KiB window, as every zlib writes by default (0x78), and its
    # checksum. gRPC's "deflate" encoding is zlib-wrapped deflate.
    return len(raw) >= 2 and raw[0] == 0x78 and (raw[0] << 8 | raw[1]) % 31 == 0


def decoder(cls: Any) -> Callable[[bytes], Received]:
    """A grpcio deserializer for message type `cls` that yields a Received.

    A compressed message is told apart from a plain one by its first bytes: gzip's magic 1f 8b
    (0x1f is never the first byte of a valid protobuf: wire type 7 does not exist) or a zlib
    header (0x78, which as a protobuf tag would be field 15, absent from the interop messages;
    and a plain message that only looks like zlib fails to decompress and is read as plain).
    """

    def decode(raw: bytes) -> Received:
        if raw[:2] == b"\x1f\x8b":
            return Received(cls.FromString(gzip.decompress(raw)), True)
        if _zlib_header(raw):
            try:
                return Received(cls.FromString(zlib.decompress(raw)), True)
            except zlib.error:
                pass  # not zlib after all: a plain message
        return Received(cls.FromString(raw), False)

    return decode


def encoder(message: Any) -> bytes:
    """A grpcio serializer for any message."""
    return message.SerializeToString()


def read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def zeros(size: int) -> Any:
    """A COMPRESSABLE payload of `size` zero bytes, as the interop tests use."""
    return pb.Payload(type=pb.COMPRESSABLE, body=bytes(size))
