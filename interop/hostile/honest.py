"""The honest client that runs beside every attack: gRPC health checks over the `h2` package.

`HonestClient` is a thread that calls POST /grpc.health.v1.Health/Check (an empty request;
health is outside herald's ACLs) in a loop until stopped, on one long-lived connection, and on a
fresh connection (new TCP + TLS handshake) every `fresh_every`-th call, so that it notices both a
server whose connections stall and one that stops accepting. A call succeeds when the response
ends with `grpc-status: 0` within `call_timeout` seconds; anything else is a failure with its
reason. The loop is bounded: `max_calls` calls at most, a pause of `interval` between calls.

    client = HonestClient(target); client.start(); ...; client.stop(); client.summary()
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Optional

import h2.config
import h2.connection
import h2.events

from peer import EMPTY_GRPC_MESSAGE, HEALTH_PATH, Target, code_name


class CallFailed(Exception):
    pass


class H2HealthConn:
    """One client connection driven by h2's state machine; blocking socket with timeouts."""

    def __init__(self, target: Target, timeout: float) -> None:
        self.target = target
        self.sock = target.open_socket()
        self.sock.settimeout(timeout)
        self.h2 = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.h2.initiate_connection()
        self.sock.sendall(self.h2.data_to_send())
        self.broken: Optional[str] = None

    def close(self) -> None:
        try:
            self.h2.close_connection()
            self.sock.sendall(self.h2.data_to_send())
        except Exception:
            pass
        self.sock.close()

    def check(self, timeout: float) -> None:
        """One health check; raises CallFailed with the reason unless grpc-status is 0."""
        end = time.monotonic() + timeout
        stream_id = self.h2.get_next_available_stream_id()
        headers = [(k.decode(), v.decode()) for k, v in self.target.request_headers(HEALTH_PATH)]
        self.h2.send_headers(stream_id, headers)
        self.h2.send_data(stream_id, EMPTY_GRPC_MESSAGE, end_stream=True)
        self.sock.sendall(self.h2.data_to_send())
        status: Optional[str] = None
        grpc_status: Optional[str] = None
        message = ""
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise CallFailed(f"no answer within {timeout:.0f} s")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise CallFailed(f"no answer within {timeout:.0f} s") from None
            except OSError as e:
                self.broken = str(e)
                raise CallFailed(f"connection failed: {e}") from None
            if not data:
                self.broken = "EOF"
                raise CallFailed("connection closed by the server")
            for event in self.h2.receive_data(data):
                if isinstance(event, h2.events.ConnectionTerminated):
                    self.broken = "GOAWAY"
                    if event.last_stream_id is not None and event.last_stream_id < stream_id:
                        raise CallFailed(f"GOAWAY {code_name(event.error_code)} before the call")
                elif getattr(event, "stream_id", None) != stream_id:
                    continue
                elif isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                    fields = dict(event.headers)
                    status = fields.get(":status", status)
                    grpc_status = fields.get("grpc-status", grpc_status)
                    message = fields.get("grpc-message", message)
                elif isinstance(event, h2.events.DataReceived):
                    self.h2.acknowledge_received_data(event.flow_controlled_length, stream_id)
                elif isinstance(event, h2.events.StreamReset):
                    raise CallFailed(f"stream reset by the server: {code_name(event.error_code)}")
                if isinstance(event, h2.events.StreamEnded) or getattr(event, "stream_ended", None):
                    if grpc_status == "0":
                        return
                    raise CallFailed(f":status {status}, grpc-status {grpc_status} {message!r}")
            pending = self.h2.data_to_send()
            if pending:
                self.sock.sendall(pending)


class HonestClient(threading.Thread):
    def __init__(
        self,
        target: Target,
        call_timeout: float = 5.0,
        interval: float = 0.05,
        fresh_every: int = 5,
        max_calls: int = 10_000,
    ) -> None:
        super().__init__(name="honest-client", daemon=True)
        self.target = target
        self.call_timeout = call_timeout
        self.interval = interval
        self.fresh_every = fresh_every
        self.max_calls = max_calls
        self.ok = 0
        self.failures: list[str] = []
        self.latencies: list[float] = []
        self._stop_event = threading.Event()
        self._first = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(self.call_timeout + self.target.connect_timeout + 2)

    def wait_first(self, timeout: float) -> bool:
        """Wait for the first call to end (either way); True when it succeeded."""
        self._first.wait(timeout)
        return self.ok > 0

    def run(self) -> None:
        conn: Optional[H2HealthConn] = None
        calls = 0
        while not self._stop_event.is_set() and calls < self.max_calls:
            calls += 1
            fresh = calls % self.fresh_every == 0
            start = time.monotonic()
            used: Optional[H2HealthConn] = None
            try:
                if fresh or conn is None:
                    used = H2HealthConn(self.target, self.call_timeout)
                    if conn is None:
                        conn = used
                else:
                    used = conn
                used.check(self.call_timeout)
                self.ok += 1
                self.latencies.append(time.monotonic() - start)
            except Exception as e:  # every failure counts, whatever raised it
                kind = "fresh connection" if fresh else "long-lived connection"
                reason = str(e) if isinstance(e, CallFailed) else f"{type(e).__name__}: {e}"
                self.failures.append(f"{kind}: {reason}")
                if used is conn:
                    conn = None
                if used is not None:
                    used.close()
                    used = None
            finally:
                if used is not None and used is not conn:
                    used.close()
                self._first.set()
            self._stop_event.wait(self.interval)
        if conn is not None:
            conn.close()

    def summary(self) -> str:
        calls = self.ok + len(self.failures)
        text = f"honest {self.ok}/{calls} ok"
        if self.latencies:
            text += f", max {max(self.latencies) * 1000:.0f} ms"
        return text
