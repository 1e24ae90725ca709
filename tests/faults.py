"""A raw-socket stand-in for PollyBot that misbehaves on purpose (tests/test_faults.py).

Below HTTP libraries on purpose: hangs, resets, trickles, lies about lengths and
endless bodies cannot be produced by a well-behaved WSGI server. Every
connection carries one request and is closed after the answer ("Connection:
close"), so counting requests counts upstream calls and connections alike.

`FaultServer.behaviour` may be switched at run time (healthy, then faulty).
Every behaviour waits on the server's stop event rather than sleeping, so
closing the server ends hangs and trickles at once: no test waits them out.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from sandbox.data import SEED_LEAD

API_PREFIX = "/api/v1/leads/"
# The server thread gives up on a client that sends no complete request head.
REQUEST_HEAD_TIMEOUT = 5.0
# A request head larger than this is not a PollyBot client's.
MAX_REQUEST_HEAD = 64 * 1024
# close() waits this long for each connection thread (they end on the stop event).
JOIN_TIMEOUT = 2.0
# accept() wakes this often to notice close().
ACCEPT_POLL = 0.05
# The healthy answer's rate budget: plenty left, so the site never saves calls.
RATE_LIMIT = 1000
RATE_REMAINING = 990


@dataclass(frozen=True)
class Request:
    """One request head as received."""

    method: str
    path: str
    headers: dict[str, str]

    @property
    def lead_id(self) -> str:
        return urllib.parse.unquote(self.path.removeprefix(API_PREFIX))


# A behaviour answers one request on its connection; `stop` is set when the server closes.
Behaviour = Callable[[socket.socket, Request, threading.Event], None]


class FaultServer:
    """A threaded TCP server on 127.0.0.1 answering each request with `behaviour`."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(32)
        self._sock.settimeout(ACCEPT_POLL)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def calls(self) -> list[str]:
        """The lead IDs asked for so far, in order."""
        with self._lock:
            return [request.lead_id for request in self.requests]

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(REQUEST_HEAD_TIMEOUT)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk or len(head) > MAX_REQUEST_HEAD:
                    return
                head += chunk
            request = _parse_head(head.split(b"\r\n\r\n", 1)[0])
            with self._lock:
                self.requests.append(request)
                behaviour = self.behaviour
            behaviour(conn, request, self._stop)

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._accepter.join(JOIN_TIMEOUT)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(JOIN_TIMEOUT)

    def __enter__(self) -> FaultServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _parse_head(head: bytes) -> Request:
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = [*lines[0].split(" ", 2), "", ""][:3]
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Request(method=method, path=path.split("?", 1)[0], headers=headers)


def response_head(status: int, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def response(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    return response_head(status, {"Content-Length": str(len(body)), **(headers or {})}) + body


def rate_limit_headers() -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(RATE_LIMIT),
        "X-RateLimit-Remaining": str(RATE_REMAINING),
        "X-RateLimit-Reset": str(int(time.time()) + 3600),
        "X-RateLimit-Used": str(RATE_LIMIT - RATE_REMAINING),
    }


# --- behaviours ------------------------------------------------------------------


def healthy(*, api_key: str, lead: dict[str, Any] | None = None) -> Behaviour:
    """The documented Get Lead: the seed lead under whatever ID was asked, 401 on a wrong key."""
    template = dict(lead or SEED_LEAD)

    def behaviour(conn: socket.socket, request: Request, stop: threading.Event) -> None:
        if request.headers.get("authorization") != f"Bearer {api_key}":
            envelope: dict[str, Any] = {
                "success": False,
                "error": "Invalid API key",
                "code": "INVALID_API_KEY",
            }
            conn.sendall(response(401, json.dumps(envelope).encode(), rate_limit_headers()))
            return
        body = json.dumps({"success": True, "data": dict(template, id=request.lead_id)}).encode()
        headers = {"Content-Type": "application/json", **rate_limit_headers()}
        conn.sendall(response(200, body, headers))

    return behaviour


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Behaviour:
    """A fixed, complete answer."""

    def behaviour(conn: socket.socket, request: Request, stop: threading.Event) -> None:
        conn.sendall(response(status, body, headers))

    return behaviour


def hang(seconds: float) -> Behaviour:
    """Read the request, then send nothing for `seconds` (or until the server closes)."""

    def behaviour(conn: socket.socket, request: Request, stop: threading.Event) -> None:
        stop.wait(seconds)

    return behaviour


def trickle(
    *, interval: float, head: bool, total: int = 100, duration: float | None = None
) -> Behaviour:
    """Send one byte every `interval` seconds: of the status line on (`head`), else of the body.

    The body variant sends its head at once, declaring `total` bytes of body.
    With `duration`, the server hangs up after that many seconds of trickling.
    """

    def behaviour(conn: socket.socket, request: Request, stop: threading.Event) -> None:
        if head:
            payload = response(200, b"{}" + b" " * total, {"Content-Type": "application/json"})
        else:
            conn.sendall(response_head(200, {"Content-Length": str(total)}))
            payload = b" " * total
        until = None if duration is None else time.monotonic() + duration
        for index in range(len(payload)):
            if stop.wait(interval) or (until is not None and time.monotonic() > until):
                return
            conn.sendall(payload[index : index + 1])

    return behaviour


def reset() -> Behaviour:
    """Read the request and close with SO_LINGER 0: the client gets a TCP RST, no answer."""

    def behaviour(conn: socket.socket, request: Request, stop: threading.Event) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    return behaviour


def truncated(*, declared: int, body: bytes) -> Behaviour:
    """A 200 that declares `declared` bytes, sends `body` (fewer), then closes."""

    def behaviour(conn: socket.socket, request: Request, stop: threading.Event) -> None:
        headers = {"Content-Type": "application/json", "Content-Length": str(declared)}
        conn.sendall(response_head(200, headers) + body)

    return behaviour


# Bytes per send of an endless body: one reused buffer, so the server's own
# memory stays flat while the test measures the site's.
_STREAM_CHUNK = b"x" * (64 * 1024)


def huge_body(*, size: int, framing: str) -> Behaviour:
    """A 200 of `size` bytes: framing "length" (honest Content-Length), "chunked" or
    "close" (no length: the body ends when the connection does). Streams until the
    client hangs up."""

    def behaviour(conn: socket.socket, request: Request, stop: threading.Event) -> None:
        headers = {"Content-Type": "application/json"}
        if framing == "length":
            headers["Content-Length"] = str(size)
        elif framing == "chunked":
            headers["Transfer-Encoding"] = "chunked"
        conn.sendall(response_head(200, headers))
        chunk_head = f"{len(_STREAM_CHUNK):x}\r\n".encode()
        sent = 0
        while sent < size and not stop.is_set():
            if framing == "chunked":
                conn.sendall(chunk_head)
                conn.sendall(_STREAM_CHUNK)
                conn.sendall(b"\r\n")
            else:
                conn.sendall(_STREAM_CHUNK)
            sent += len(_STREAM_CHUNK)
        if framing == "chunked":
            conn.sendall(b"0\r\n\r\n")

    return behaviour
