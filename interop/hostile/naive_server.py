#!/usr/bin/env python3
"""An undefended HTTP/2 server, to check the hostile peers themselves (not a herald test).

    naive_server.py [--port 0]      # plaintext HTTP/2 (prior knowledge) on 127.0.0.1

Prints "LISTENING <port>" and serves until SIGTERM/Ctrl-C. Every request gets the answer of
grpc.health.v1.Health/Check (SERVING, grpc-status 0) once its body has ended. It is the `h2`
package's server state machine on asyncio with no limits of its own: what it reads, it
processes, and what it writes, asyncio buffers without bound. So it serves as a negative
control: against it, run.py --plaintext must report FAILs where the server has no defence (for
instance ping_flood and settings_flood: it keeps reading while its ACKs pile up in memory),
which shows that the peers can tell a defended server from an undefended one.
"""

from __future__ import annotations

import argparse
import asyncio

import h2.config
import h2.connection
import h2.events
import h2.exceptions

# HealthCheckResponse{status: SERVING} in a gRPC frame.
SERVING = b"\x00\x00\x00\x00\x02\x08\x01"


class Http2Protocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        self.conn.initiate_connection()
        self.transport.write(self.conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.transport.write(self.conn.data_to_send())
            self.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.answer(event.stream_id)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.transport.close()
        self.transport.write(self.conn.data_to_send())

    def answer(self, stream_id: int) -> None:
        try:
            self.conn.send_headers(stream_id, [(":status", "200"), ("content-type", "application/grpc")])
            self.conn.send_data(stream_id, SERVING)
            self.conn.send_headers(stream_id, [("grpc-status", "0")], end_stream=True)
        except h2.exceptions.H2Error:
            pass  # the stream went away meanwhile


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = await asyncio.get_running_loop().create_server(Http2Protocol, "127.0.0.1", args.port)
    print(f"LISTENING {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
