#!/usr/bin/env python3
"""The grpcio interop server for herald: grpc.testing.TestService as gRPC's interop test
description specifies it, on gRPC's C core.

    server.py --port 0                                      # plaintext
    server.py --port 0 --tls --cert C --key K --ca CA       # mutual TLS, client certs required

Binds 127.0.0.1 only; prints "LISTENING <port>" on stdout once it accepts calls. SIGTERM or
SIGINT stops it (calls in flight get 1 s), with exit code 0.

What a call can ask of it:
  - metadata x-grpc-test-echo-initial is echoed as initial metadata, and
    x-grpc-test-echo-trailing-bin as trailing metadata (also on calls that fail);
  - response_status (code != 0) ends the call with that code and message, before any response;
  - response_size / response_parameters (size, interval_us) shape the responses: zero bytes;
  - response_compressed / ResponseParameters.compressed: gzip that response message (or not);
  - expect_compressed, when set, must match how the request message came, else INVALID_ARGUMENT.
UnimplementedCall and UnimplementedService are not implemented: they end with UNIMPLEMENTED.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from concurrent import futures
from typing import Any, Iterator, NoReturn

import grpc

from common import (
    COMMON_OPTIONS,
    ECHO_INITIAL,
    ECHO_TRAILING,
    TEST_SERVICE,
    Empty,
    Received,
    decoder,
    encoder,
    pb,
    read_file,
    zeros,
)

# grpc.StatusCode by its number. Codes grpcio has no member for cannot be sent: UNKNOWN instead.
_CODES = {code.value[0]: code for code in grpc.StatusCode}


class Call:
    """What every method does with its call: echo metadata, fix compression, fail on request."""

    def __init__(self, ctx: grpc.ServicerContext) -> None:
        self.ctx = ctx
        metadata = ctx.invocation_metadata() or ()
        self._initial = [(k, v) for k, v in metadata if k == ECHO_INITIAL]
        trailing = [(k, v) for k, v in metadata if k == ECHO_TRAILING]
        if trailing:
            ctx.set_trailing_metadata(trailing)
        self._started = False
        self._compressing = False
        self._ended = threading.Event()  # set when the call ends (done, cancelled, expired)
        ctx.add_callback(self._ended.set)

    def start(self, compress: bool = False) -> None:
        """Before the first response: choose the call's compression (grpcio fixes it in the
        initial metadata) and send the echoed initial metadata. Later calls do nothing."""
        if self._started:
            return
        self._started = True
        if compress:
            self.ctx.set_compression(grpc.Compression.Gzip)
            self._compressing = True
        if self._initial:
            self.ctx.send_initial_metadata(self._initial)

    def abort(self, code: grpc.StatusCode, message: str) -> NoReturn:
        self.start()
        self.ctx.abort(code, message)

    def check_request(self, request: Any, compressed: bool | None = None) -> None:
        """The checks common to all requests: payload type, expected compression, sizes."""
        if getattr(request, "response_type", pb.COMPRESSABLE) != pb.COMPRESSABLE:
            self.abort(grpc.StatusCode.INVALID_ARGUMENT, "unknown response_type")
        if compressed is not None and request.HasField("expect_compressed"):
            if request.expect_compressed.value != compressed:
                how = "compressed" if compressed else "uncompressed"
                self.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"expect_compressed is {request.expect_compressed.value} but the request came {how}",
                )
        sizes = [p.size for p in getattr(request, "response_parameters", ())]
        sizes.append(getattr(request, "response_size", 0))
        if min(sizes) < 0:
            self.abort(grpc.StatusCode.INVALID_ARGUMENT, "negative response size")

    def fail_if_asked(self, request: Any) -> None:
        """End the call with request.response_status, if it has one that is not OK."""
        if request.HasField("response_status") and request.response_status.code != 0:
            status = request.response_status
            self.abort(_CODES.get(status.code, grpc.StatusCode.UNKNOWN), status.message)

    def respond(self, request: Any) -> Iterator[Any]:
        """The responses one StreamingOutputCallRequest asks for, paced by interval_us."""
        self.check_request(request)
        self.fail_if_asked(request)
        params = request.response_parameters
        self.start(compress=any(p.compressed.value for p in params))
        for p in params:
            if p.interval_us > 0 and self._ended.wait(p.interval_us / 1e6):
                return  # the call ended while we waited
            if self._compressing and not p.compressed.value:
                self.ctx.disable_next_message_compression()
            # A message asking for compression in a call that started uncompressed (a later
            # request of a duplex call) goes uncompressed: grpcio fixes it per call.
            yield pb.StreamingOutputCallResponse(payload=zeros(p.size))


class TestService:
    """The methods of grpc.testing.TestService. Requests arrive as Received (see common.py)."""

    def empty_call(self, _received: Received, ctx: grpc.ServicerContext) -> Any:
        Call(ctx).start()
        return Empty()

    def unary_call(self, received: Received, ctx: grpc.ServicerContext) -> Any:
        request, call = received.message, Call(ctx)
        call.check_request(request, received.compressed)
        call.fail_if_asked(request)
        call.start(compress=request.response_compressed.value)
        return pb.SimpleResponse(payload=zeros(request.response_size))

    def streaming_output_call(self, received: Received, ctx: grpc.ServicerContext) -> Iterator[Any]:
        yield from Call(ctx).respond(received.message)

    def streaming_input_call(self, requests: Iterator[Received], ctx: grpc.ServicerContext) -> Any:
        call, total = Call(ctx), 0
        for received in requests:
            call.check_request(received.message, received.compressed)
            total += len(received.message.payload.body)
        call.start()
        return pb.StreamingInputCallResponse(aggregated_payload_size=total)

    def full_duplex_call(self, requests: Iterator[Received], ctx: grpc.ServicerContext) -> Iterator[Any]:
        call = Call(ctx)
        for received in requests:
            yield from call.respond(received.message)
        call.start()  # echo initial metadata even when there was nothing to answer

    def half_duplex_call(self, requests: Iterator[Received], ctx: grpc.ServicerContext) -> Iterator[Any]:
        call = Call(ctx)
        buffered = [received.message for received in requests]  # until the client half-closes
        for request in buffered:
            yield from call.respond(request)
        call.start()


def handler(service: TestService) -> grpc.GenericRpcHandler:
    """TestService's methods with decoders that see compression (the generated
    add_TestServiceServicer_to_server would decode with FromString). Methods not listed
    (UnimplementedCall), and services not registered, end with UNIMPLEMENTED."""
    simple, output = decoder(pb.SimpleRequest), decoder(pb.StreamingOutputCallRequest)
    return grpc.method_handlers_generic_handler(
        TEST_SERVICE,
        {
            "EmptyCall": grpc.unary_unary_rpc_method_handler(service.empty_call, decoder(Empty), encoder),
            "UnaryCall": grpc.unary_unary_rpc_method_handler(service.unary_call, simple, encoder),
            "StreamingOutputCall": grpc.unary_stream_rpc_method_handler(
                service.streaming_output_call, output, encoder
            ),
            "StreamingInputCall": grpc.stream_unary_rpc_method_handler(
                service.streaming_input_call, decoder(pb.StreamingInputCallRequest), encoder
            ),
            "FullDuplexCall": grpc.stream_stream_rpc_method_handler(service.full_duplex_call, output, encoder),
            "HalfDuplexCall": grpc.stream_stream_rpc_method_handler(service.half_duplex_call, output, encoder),
        },
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1; 0 picks a free one")
    parser.add_argument("--tls", action="store_true", help="mutual TLS (requires --cert --key --ca)")
    parser.add_argument("--cert", help="PEM certificate chain of the server")
    parser.add_argument("--key", help="PEM private key of the server")
    parser.add_argument("--ca", help="PEM CA certificates that client certificates must chain to")
    args = parser.parse_args(argv)
    if args.tls and not (args.cert and args.key and args.ca):
        parser.error("--tls needs --cert, --key and --ca")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    # so_reuseport off: a fixed --port already in use must fail, not be shared.
    options = COMMON_OPTIONS + [("grpc.so_reuseport", 0)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64), options=options)
    server.add_generic_rpc_handlers((handler(TestService()),))
    address = f"127.0.0.1:{args.port}"
    try:
        if args.tls:
            credentials = grpc.ssl_server_credentials(
                [(read_file(args.key), read_file(args.cert))],
                root_certificates=read_file(args.ca),
                require_client_auth=True,
            )
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
    except (OSError, RuntimeError) as e:
        print(f"server.py: cannot listen on {address}: {e}", file=sys.stderr)
        return 1
    if port == 0:  # older grpcio reports a failed bind so
        print(f"server.py: cannot listen on {address}", file=sys.stderr)
        return 1
    server.start()
    print(f"LISTENING {port}", flush=True)

    while not stop.wait(0.5):
        pass
    server.stop(grace=1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
