"""Serve a SandboxApp over real HTTP in a background thread (tests, benchmarks, `make run`)."""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
import time
from types import TracebackType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from sandbox.app import SandboxApp

logger = logging.getLogger(__name__)

# serve_forever() checks for shutdown this often; short so that stop() is quick in tests.
_POLL_INTERVAL_SECONDS = 0.05
# How long serve() waits for the listening socket to accept a probe connection.
_STARTUP_TIMEOUT_SECONDS = 5.0
_STARTUP_PROBE_INTERVAL_SECONDS = 0.01


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    # One thread per connection, so slow (injected) answers never block other requests;
    # daemon threads so a trickling answer never keeps the process alive.
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Client disconnects mid-answer are routine in timeout tests: no stderr noise.
        logger.debug("sandbox: error while serving %s", client_address, exc_info=True)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("sandbox: %s - " + format, self.address_string(), *args)


class RunningSandbox:
    """A sandbox being served; ``stop()`` (or leaving the ``with`` block) shuts it down."""

    def __init__(
        self, *, app: SandboxApp, server: WSGIServer, thread: threading.Thread, host: str
    ) -> None:
        self.app = app
        self.base_url = f"http://{host}:{server.server_port}"
        self._server = server
        self._thread = thread

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _wait_until_accepting(host: str, port: int) -> None:
    deadline = time.monotonic() + _STARTUP_TIMEOUT_SECONDS
    while True:
        try:
            with socket.create_connection((host, port), timeout=_STARTUP_TIMEOUT_SECONDS):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(_STARTUP_PROBE_INTERVAL_SECONDS)


def serve(
    app: SandboxApp | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> RunningSandbox:
    """Start a threaded HTTP server for ``app`` (a fresh demo app if None).

    ``port=0`` picks a free port; the returned sandbox's ``base_url`` says which.
    Returns once the server accepts connections.
    """
    app = app if app is not None else SandboxApp()
    server = make_server(
        host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": _POLL_INTERVAL_SECONDS},
        name=f"sandbox-{server.server_port}",
        daemon=True,
    )
    thread.start()
    running = RunningSandbox(app=app, server=server, thread=thread, host=host)
    _wait_until_accepting(host, server.server_port)
    return running
