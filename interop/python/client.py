#!/usr/bin/env python3
"""The grpcio interop client for herald: gRPC's interop test cases, on gRPC's C core, against
a grpc.testing.TestService server.

    client.py --port N [--cases all | a,b,c]                   # plaintext
    client.py --port N --tls --cert C --key K --ca CA [--server-name localhost]
    client.py --port N --soak 1000                             # 1000 large_unary calls

Prints one line per case, "PASS name", "FAIL name: reason" or "SKIP name: reason" (a case
grpcio cannot express; never counted as passed), then "N passed, M failed[, K skipped]".
With --soak the calls are counted instead: a FAIL line per failed call (the first 20), then
"N passed, M failed". Exit code 0 only when nothing failed. Every call has a deadline
(--timeout, 10 s by default), so every case ends.
"""

from __future__ import annotations

import argparse
import queue
import statistics
import sys
import time
from typing import Any, Callable, Iterator

import grpc

from common import (
    COMMON_OPTIONS,
    ECHO_INITIAL,
    ECHO_TRAILING,
    TEST_SERVICE,
    UNIMPLEMENTED_SERVICE,
    Empty,
    decoder,
    encoder,
    pb,
    read_file,
    zeros,
)

Code = grpc.StatusCode


class Failure(Exception):
    """The case failed; the message says why."""


class Skipped(Exception):
    """grpcio cannot express the case; the message says why."""


def check(condition: bool, reason: str) -> None:
    if not condition:
        raise Failure(reason)


class Peer:
    """Callables for the server's methods. Responses come back as Received (common.py):
    the message and whether it came compressed."""

    def __init__(self, channel: grpc.Channel, timeout: float) -> None:
        self.timeout = timeout

        def method(kind: str, name: str, response: Any, service: str = TEST_SERVICE) -> Any:
            make = getattr(channel, kind)
            return make(f"/{service}/{name}", request_serializer=encoder, response_deserializer=decoder(response))

        self.empty_call = method("unary_unary", "EmptyCall", Empty)
        self.unary_call = method("unary_unary", "UnaryCall", pb.SimpleResponse)
        self.streaming_output_call = method("unary_stream", "StreamingOutputCall", pb.StreamingOutputCallResponse)
        self.streaming_input_call = method("stream_unary", "StreamingInputCall", pb.StreamingInputCallResponse)
        self.full_duplex_call = method("stream_stream", "FullDuplexCall", pb.StreamingOutputCallResponse)
        self.unimplemented_call = method("unary_unary", "UnimplementedCall", Empty)
        self.unimplemented_service = method("unary_unary", "UnimplementedCall", Empty, UNIMPLEMENTED_SERVICE)


class Requests:
    """A request stream the case feeds as it goes: push() sends, close() half-closes. As a
    context manager it always half-closes on exit, so grpcio's sending thread never hangs."""

    _END = object()

    def __init__(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()

    def push(self, message: Any) -> None:
        self._queue.put(message)

    def close(self) -> None:
        self._queue.put(self._END)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        item = self._queue.get()
        if item is self._END:
            self._queue.put(self._END)  # stay closed for any later next()
            raise StopIteration
        return item

    def __enter__(self) -> Requests:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


def expect_error(call: Callable[[], Any], code: grpc.StatusCode, details: str | None = None) -> None:
    """`call` must fail with `code` (and, if given, exactly these details)."""
    try:
        call()
    except grpc.RpcError as e:
        check(e.code() == code, f"ended with {e.code().name} {e.details()!r}, want {code.name}")
        if details is not None:
            check(e.details() == details, f"status message {e.details()!r}, want {details!r}")
        return
    raise Failure(f"succeeded, want {code.name}")


def check_payload(payload: Any, size: int) -> None:
    check(payload.type == pb.COMPRESSABLE, f"payload type {payload.type}, want COMPRESSABLE")
    check(len(payload.body) == size, f"payload of {len(payload.body)} bytes, want {size}")
    check(payload.body == bytes(size), "payload body is not all zeros")


def large_request(**fields: Any) -> Any:
    """The request of large_unary: 271828 bytes up, 314159 bytes down."""
    return pb.SimpleRequest(response_type=pb.COMPRESSABLE, response_size=314159, payload=zeros(271828), **fields)


def output_request(*sizes: int, payload: int = 0, **fields: Any) -> Any:
    params = [pb.ResponseParameters(size=size) for size in sizes]
    return pb.StreamingOutputCallRequest(
        response_type=pb.COMPRESSABLE, response_parameters=params, payload=zeros(payload), **fields
    )


def next_response(responses: Iterator[Any]) -> Any:
    response = next(responses, None)
    check(response is not None, "the response stream ended early")
    return response


# The cases, in the order of gRPC's interop test description. Each raises Failure, Skipped or
# grpc.RpcError, or returns when it passed.

CASES: dict[str, Callable[[Peer], None]] = {}


def case(fn: Callable[[Peer], None]) -> Callable[[Peer], None]:
    CASES[fn.__name__] = fn
    return fn


@case
def empty_unary(p: Peer) -> None:
    response = p.empty_call(Empty(), timeout=p.timeout)
    check(response.message == Empty(), "the response is not empty")


@case
def large_unary(p: Peer) -> None:
    response = p.unary_call(large_request(), timeout=p.timeout)
    check_payload(response.message.payload, 314159)


@case
def client_compressed_unary(p: Peer) -> None:
    # The probe: an uncompressed request claiming to be compressed must be refused.
    claim = large_request(expect_compressed=pb.BoolValue(value=True))
    expect_error(lambda: p.unary_call(claim, timeout=p.timeout), Code.INVALID_ARGUMENT)
    for compressed in (True, False):
        request = large_request(expect_compressed=pb.BoolValue(value=compressed))
        how = grpc.Compression.Gzip if compressed else grpc.Compression.NoCompression
        response = p.unary_call(request, timeout=p.timeout, compression=how)
        check_payload(response.message.payload, 314159)


@case
def server_compressed_unary(p: Peer) -> None:
    for compressed in (True, False):
        request = large_request(response_compressed=pb.BoolValue(value=compressed))
        response = p.unary_call(request, timeout=p.timeout)
        check_payload(response.message.payload, 314159)
        check(
            response.compressed == compressed,
            f"response_compressed={compressed} but the response came {'' if response.compressed else 'un'}compressed",
        )


@case
def client_streaming(p: Peer) -> None:
    requests = [pb.StreamingInputCallRequest(payload=zeros(n)) for n in (27182, 8, 1828, 45904)]
    response = p.streaming_input_call(iter(requests), timeout=p.timeout)
    size = response.message.aggregated_payload_size
    check(size == 74922, f"aggregated_payload_size {size}, want 74922")


@case
def client_compressed_streaming(p: Peer) -> None:
    raise Skipped(
        "needs a compressed first and an uncompressed second message in one client stream; "
        "grpcio compresses all or none of a call's requests (no per-message write flags)"
    )


@case
def server_streaming(p: Peer) -> None:
    sizes = [31415, 9, 2653, 58979]
    responses = list(p.streaming_output_call(output_request(*sizes), timeout=p.timeout))
    got = [len(r.message.payload.body) for r in responses]
    check(got == sizes, f"response sizes {got}, want {sizes}")
    for response, size in zip(responses, sizes):
        check_payload(response.message.payload, size)


@case
def server_compressed_streaming(p: Peer) -> None:
    params = [
        pb.ResponseParameters(size=31415, compressed=pb.BoolValue(value=True)),
        pb.ResponseParameters(size=92653, compressed=pb.BoolValue(value=False)),
    ]
    request = pb.StreamingOutputCallRequest(response_type=pb.COMPRESSABLE, response_parameters=params)
    responses = list(p.streaming_output_call(request, timeout=p.timeout))
    got = [(len(r.message.payload.body), r.compressed) for r in responses]
    check(got == [(31415, True), (92653, False)], f"(size, compressed) {got}, want [(31415, True), (92653, False)]")


@case
def ping_pong(p: Peer) -> None:
    with Requests() as requests:
        responses = p.full_duplex_call(requests, timeout=p.timeout)
        for up, down in zip((27182, 8, 1828, 45904), (31415, 9, 2653, 58979)):
            requests.push(output_request(down, payload=up))
            check_payload(next_response(responses).message.payload, down)
        requests.close()
        check(next(responses, None) is None, "a response more than asked for")


@case
def empty_stream(p: Peer) -> None:
    responses = list(p.full_duplex_call(iter(()), timeout=p.timeout))
    check(not responses, f"{len(responses)} responses, want none")


@case
def custom_metadata(p: Peer) -> None:
    initial, trailing = (ECHO_INITIAL, "test_initial_metadata_value"), (ECHO_TRAILING, b"\xab\xab\xab")
    metadata = (initial, trailing)

    def check_echo(call: Any, what: str) -> None:
        got_initial = [tuple(m) for m in call.initial_metadata() or ()]
        got_trailing = [tuple(m) for m in call.trailing_metadata() or ()]
        check(initial in got_initial, f"{what}: initial metadata {got_initial} lacks {initial}")
        check(trailing in got_trailing, f"{what}: trailing metadata {got_trailing} lacks {trailing}")

    response, call = p.unary_call.with_call(large_request(), timeout=p.timeout, metadata=metadata)
    check_payload(response.message.payload, 314159)
    check_echo(call, "UnaryCall")

    with Requests() as requests:
        responses = p.full_duplex_call(requests, timeout=p.timeout, metadata=metadata)
        requests.push(output_request(314159, payload=271828))
        check_payload(next_response(responses).message.payload, 314159)
        requests.close()
        check(next(responses, None) is None, "a response more than asked for")
        check_echo(responses, "FullDuplexCall")


def _status_case(p: Peer, message: str, duplex: bool) -> None:
    status = pb.EchoStatus(code=2, message=message)  # 2 is UNKNOWN
    expect_error(
        lambda: p.unary_call(pb.SimpleRequest(response_status=status), timeout=p.timeout),
        Code.UNKNOWN,
        message,
    )
    if not duplex:
        return

    def full_duplex() -> None:
        with Requests() as requests:
            responses = p.full_duplex_call(requests, timeout=p.timeout)
            requests.push(pb.StreamingOutputCallRequest(response_status=status))
            requests.close()
            list(responses)

    expect_error(full_duplex, Code.UNKNOWN, message)


@case
def status_code_and_message(p: Peer) -> None:
    _status_case(p, "test status message", duplex=True)


@case
def special_status_message(p: Peer) -> None:
    _status_case(p, "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n", duplex=False)


@case
def unimplemented_method(p: Peer) -> None:
    expect_error(lambda: p.unimplemented_call(Empty(), timeout=p.timeout), Code.UNIMPLEMENTED)


@case
def unimplemented_service(p: Peer) -> None:
    expect_error(lambda: p.unimplemented_service(Empty(), timeout=p.timeout), Code.UNIMPLEMENTED)


@case
def cancel_after_begin(p: Peer) -> None:
    with Requests() as requests:
        future = p.streaming_input_call.future(requests, timeout=p.timeout)
        future.cancel()
        code = future.code()
    check(code == Code.CANCELLED, f"ended with {code.name}, want CANCELLED")


@case
def cancel_after_first_response(p: Peer) -> None:
    with Requests() as requests:
        responses = p.full_duplex_call(requests, timeout=p.timeout)
        requests.push(output_request(31415, payload=27182))
        check_payload(next_response(responses).message.payload, 31415)
        responses.cancel()
        code = responses.code()
    check(code == Code.CANCELLED, f"ended with {code.name}, want CANCELLED")


@case
def timeout_on_sleeping_server(p: Peer) -> None:
    def sleeping() -> None:
        with Requests() as requests:
            responses = p.full_duplex_call(requests, timeout=0.001)
            requests.push(output_request(payload=27182))
            list(responses)

    expect_error(sleeping, Code.DEADLINE_EXCEEDED)


def reason_of(e: BaseException) -> str:
    """A one-line reason for a FAIL line."""
    if isinstance(e, grpc.RpcError) and hasattr(e, "code"):
        reason = f"RPC ended with {e.code().name} {e.details()!r}"
    elif isinstance(e, Failure):
        reason = str(e)
    else:
        reason = f"{type(e).__name__}: {e}"
    return reason.replace("\r", "\\r").replace("\n", "\\n")


def run_cases(p: Peer, names: list[str]) -> int:
    passed = failed = skipped = 0
    for name in names:
        try:
            CASES[name](p)
        except Skipped as e:
            skipped += 1
            print(f"SKIP {name}: {e}", flush=True)
        except Exception as e:  # noqa: BLE001 - any exception fails the case, with its reason
            failed += 1
            print(f"FAIL {name}: {reason_of(e)}", flush=True)
        else:
            passed += 1
            print(f"PASS {name}", flush=True)
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""), flush=True)
    return failed


def run_soak(p: Peer, calls: int, shown: int = 20) -> int:
    """`calls` large_unary calls on one channel, one after another; counts the failures."""
    failed, latencies = 0, []
    for i in range(calls):
        start = time.monotonic()
        try:
            large_unary(p)
        except Exception as e:  # noqa: BLE001
            failed += 1
            if failed <= shown:
                print(f"FAIL large_unary#{i}: {reason_of(e)}", flush=True)
        latencies.append(time.monotonic() - start)
    if latencies:
        ms = sorted(x * 1000 for x in latencies)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        hidden = f"; {failed - shown} more failures not shown" if failed > shown else ""
        print(
            f"soak: {calls} calls in {sum(latencies):.2f} s; ms p50 {statistics.median(ms):.2f}"
            f" p99 {p99:.2f} max {ms[-1]:.2f}{hidden}",
            file=sys.stderr,
        )
    print(f"{calls - failed} passed, {failed} failed", flush=True)
    return failed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cases", default="all", help=f"'all' or a comma-separated list of: {', '.join(CASES)}")
    parser.add_argument("--tls", action="store_true", help="mutual TLS (requires --cert --key --ca)")
    parser.add_argument("--cert", help="PEM certificate chain of the client")
    parser.add_argument("--key", help="PEM private key of the client")
    parser.add_argument("--ca", help="PEM CA certificates the server certificate must chain to")
    parser.add_argument(
        "--server-name",
        default="localhost",
        help="name the server certificate must carry (DNS or IP SAN); sent as SNI (default: localhost)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline of each call, seconds (default 10)")
    parser.add_argument("--soak", type=int, metavar="N", help="instead of the cases: N large_unary calls")
    args = parser.parse_args(argv)
    if args.tls and not (args.cert and args.key and args.ca):
        parser.error("--tls needs --cert, --key and --ca")
    names = list(CASES) if args.cases == "all" else [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown or not names:
        parser.error(f"unknown cases {unknown}; known: {', '.join(CASES)}")
    args.names = names
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    target = f"{args.host}:{args.port}"
    options = list(COMMON_OPTIONS)
    if args.tls:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=read_file(args.ca),
            private_key=read_file(args.key),
            certificate_chain=read_file(args.cert),
        )
        # Check the server's certificate against --server-name rather than the address.
        options.append(("grpc.ssl_target_name_override", args.server_name))
        channel = grpc.secure_channel(target, credentials, options=options)
    else:
        channel = grpc.insecure_channel(target, options=options)
    with channel:
        peer = Peer(channel, args.timeout)
        failed = run_soak(peer, args.soak) if args.soak is not None else run_cases(peer, args.names)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
