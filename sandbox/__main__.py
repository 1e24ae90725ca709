"""`python -m sandbox --port N`: serve the demo PollyBot API until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
import threading

from sandbox.app import DEFAULT_RATE_LIMIT, SandboxApp
from sandbox.data import DEMO_API_KEY
from sandbox.server import serve

DEFAULT_PORT = 8765  # the Makefile's SANDBOX_PORT
# Characters of a non-demo key shown when masked: enough to tell keys apart, not to use one.
_MASK_VISIBLE_SUFFIX = 4
_KEY_PREFIX = "sk-workspace_"


def mask_key(key: str) -> str:
    """The demo key in full (it is public), any other key masked."""
    if key == DEMO_API_KEY:
        return key
    prefix = _KEY_PREFIX if key.startswith(_KEY_PREFIX) else ""
    return f"{prefix}…{key[-_MASK_VISIBLE_SUFFIX:]}" if len(key) > 2 * _MASK_VISIBLE_SUFFIX else "…"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox", description="Serve the stand-in PollyBot leads API."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--api-key", default=DEMO_API_KEY)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before each answer")
    parser.add_argument(
        "--rate-limit", type=int, default=DEFAULT_RATE_LIMIT, help="per key, per hour"
    )
    args = parser.parse_args(argv)

    app = SandboxApp(
        api_key=args.api_key, latency=args.latency_ms / 1000, rate_limit=args.rate_limit
    )
    running = serve(app, host=args.host, port=args.port)
    print(  # noqa: T201 (a command-line tool's one line of output)
        f"PollyBot sandbox at {running.base_url} (API key: {mask_key(args.api_key)}); Ctrl-C stops",
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
