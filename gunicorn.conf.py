"""Production serving config: `gunicorn -c gunicorn.conf.py`.

Every knob has an environment variable so a deployment tunes it without a code
change. Lead pages spend most of their time waiting on PollyBot (network I/O),
so threaded workers (gthread) serve many pages per process at little memory cost.
"""

from __future__ import annotations

import multiprocessing
import os

wsgi_app: str = "leadsite.wsgi:application"

# PORT is what most platforms (Heroku-style, Cloud Run, Render) hand the process;
# there the platform's router connects from outside the container, so all
# interfaces. GUNICORN_BIND wins over PORT. Loopback by default: a reverse proxy
# in front terminates TLS and talks to us locally.
_port = os.environ.get("PORT", "").strip()
bind: str = os.environ.get("GUNICORN_BIND", "").strip() or (
    f"0.0.0.0:{_port}" if _port else "127.0.0.1:8000"
)

worker_class: str = "gthread"
# The classic 2 x cores + 1: one process busy in Python while another waits on
# I/O per core, plus one spare. Capped so a large host does not start dozens of
# processes that each hold their own memory and PollyBot connection pool.
_MAX_DEFAULT_WORKERS = 12
workers: int = int(
    os.environ.get(
        "GUNICORN_WORKERS", min(multiprocessing.cpu_count() * 2 + 1, _MAX_DEFAULT_WORKERS)
    )
)
# Threads per worker: pages mostly wait on PollyBot or on a single-flight leader,
# so a few threads keep a worker useful while others wait. Keep it at or under
# the PollyBot client's POOL_MAXSIZE (10) so every thread gets a pooled connection.
threads: int = int(os.environ.get("GUNICORN_THREADS", "4"))

# A request may wait on PollyBot for the client's whole call deadline (8 s,
# leads/pollybot.py CALL_DEADLINE) plus the single-flight lock's margin (5 s)
# when it waits on another request's call; 30 s leaves ample headroom, yet a
# truly stuck worker is still killed and replaced.
timeout: int = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM (deploys), in-flight pages get as long as one PollyBot call plus margin
# to finish before the worker is killed.
graceful_timeout: int = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
# Seconds an idle keep-alive connection from the proxy is held open: above the
# proxy's reuse gap for bursts of page loads, short enough not to pin threads.
keepalive: int = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))

# Recycle each worker after this many requests (jittered so workers do not all
# restart at once) to bound slow memory creep in long-lived processes.
max_requests: int = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter: int = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "200"))

# Trust X-Forwarded-* only from the proxy in front (a comma-separated list of IPs).
forwarded_allow_ips: str = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Whether a request came over HTTPS is read from X-Forwarded-Proto only behind a
# proxy that overwrites it (BEHIND_TLS_PROXY, as Django's SECURE_PROXY_SSL_HEADER);
# otherwise gunicorn's default would trust that header from a local proxy.
secure_scheme_headers: dict[str, str] = (
    {"X-FORWARDED-PROTO": "https"}
    if os.environ.get("BEHIND_TLS_PROXY", "").strip().lower() in {"1", "true", "yes", "on"}
    else {}
)

# Logs go to stdout/stderr, where the platform collects them.
accesslog: str = "-"
errorlog: str = "-"
loglevel: str = os.environ.get("GUNICORN_LOG_LEVEL", "info")
