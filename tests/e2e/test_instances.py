"""Single-flight across app servers: two gunicorn instances sharing one Redis.

Production runs several instances behind a load balancer; the lock and the
cached outcome live in the shared cache, so a burst of views of one lead, spread
over every instance, costs PollyBot exactly one call. A local-memory cache is
per process and cannot show this, so the file runs only against Redis.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
import requests

from sandbox.app import SandboxApp
from sandbox.data import DEMO_API_KEY
from sandbox.server import RunningSandbox, serve

ROOT = Path(__file__).resolve().parents[2]
ENV_CACHE_URL = os.environ.get("CACHE_URL", "")
ENV_DATABASE_URL = os.environ.get("DATABASE_URL", "")

pytestmark = pytest.mark.skipif(
    not ENV_CACHE_URL.startswith("redis://"),
    reason=(
        "needs CACHE_URL=redis://...: a local-memory cache is per process, so "
        "single-flight across two app servers cannot be shown without a shared Redis"
    ),
)

SEED_LEAD = "lead_1234567890abcdef"
MISSING_LEAD = "lead_doesnotexist000000"
USERNAME = "sam"
PASSWORD = "correct-horse-42"
SECRET_KEY = "instances-e2e-only-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz"

# Views fired at once, spread over both instances: more than the 2 x 2 workers x
# 8 threads can serve at once, so some queue behind the leader's call too.
BURST = 50
# Each PollyBot answer takes this long, so every view of the burst arrives while
# the first one's call is still under way.
SANDBOX_LATENCY = 0.5
# Redis database of this file's instances: away from the one the rest of the
# suite flushes between tests (conftest's cache.clear()), so a concurrent test
# run cannot wipe the lock or the result mid-burst.
E2E_REDIS_DBS = (15, 14)
# Bounds that keep a broken setup from hanging the run.
STARTUP_TIMEOUT = 20.0
SUBPROCESS_TIMEOUT = 60
REQUEST_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

POSTGRES_SCHEMES = ("postgres", "postgresql", "pgsql", "psql")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Cluster:
    sandbox: RunningSandbox
    base_urls: tuple[str, str]
    session_id: str

    def upstream_gets(self, lead_id: str) -> int:
        path = f"/api/v1/leads/{lead_id}"
        return sum(1 for r in self.sandbox.app.requests if r.method == "GET" and r.path == path)

    def upstream_log(self) -> list[str]:
        """What the sandbox received, for failure messages (no Authorization header)."""
        return [f"{r.method} {r.path}" for r in self.sandbox.app.requests]

    def burst(self, lead_id: str) -> list[requests.Response]:
        """BURST concurrent views of one lead, alternating instances, released together."""
        barrier = threading.Barrier(BURST)

        def view(index: int) -> requests.Response:
            url = f"{self.base_urls[index % 2]}/leads/{lead_id}/"
            barrier.wait(timeout=REQUEST_TIMEOUT)
            return requests.get(
                url,
                cookies={"sessionid": self.session_id},
                allow_redirects=False,  # a lost session shows as a 302, not a login page
                timeout=REQUEST_TIMEOUT,
            )

        with ThreadPoolExecutor(max_workers=BURST) as pool:
            return list(pool.map(view, range(BURST)))


@pytest.fixture(scope="module")
def scratch_database(tmp_path_factory) -> Iterator[str]:
    """A DATABASE_URL of the instances' own: a scratch PostgreSQL database, else SQLite."""
    parts = urlsplit(ENV_DATABASE_URL)
    if parts.scheme not in POSTGRES_SCHEMES:
        yield f"sqlite:///{tmp_path_factory.mktemp('instances') / 'site.sqlite3'}"
        return
    import psycopg

    name = f"leadsite_e2e_{secrets.token_hex(6)}"
    admin_dsn = urlunsplit(parts._replace(scheme="postgresql"))
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def redis_url() -> str:
    """The environment's Redis, in a database of this file's own (see E2E_REDIS_DBS).

    django-environ cannot give Django's RedisCache a KEY_PREFIX from the URL (it
    lower-cases `?key_prefix=` to a key Django ignores), so a database number
    keeps the key spaces apart instead.
    """
    parts = urlsplit(ENV_CACHE_URL)
    env_db = parts.path.strip("/") or "0"
    db = next(str(number) for number in E2E_REDIS_DBS if str(number) != env_db)
    return urlunsplit(parts._replace(path=f"/{db}", query=""))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, scratch_database, redis_url) -> Iterator[Cluster]:
    logs = tmp_path_factory.mktemp("gunicorn")
    sandbox = serve(SandboxApp(latency=SANDBOX_LATENCY))
    ports = (free_port(), free_port())
    base_env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "DATABASE_URL": scratch_database,
        "CACHE_URL": redis_url,
        "POLLYBOT_BASE_URL": sandbox.base_url,
        "POLLYBOT_API_KEY": DEMO_API_KEY,
        "TIME_ZONE": "UTC",
        "PYTHONUNBUFFERED": "1",
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        setup = subprocess.run(  # noqa: S603
            [
                sys.executable,
                "manage.py",
                "shell",
                "-c",
                "from django.core.management import call_command; "
                "from django.contrib.auth import get_user_model; "
                "call_command('migrate', verbosity=0, interactive=False); "
                f"get_user_model().objects.create_user({USERNAME!r}, password={PASSWORD!r})",
            ],
            cwd=ROOT,
            env=base_env,
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
            check=False,
        )
        assert setup.returncode == 0, setup.stdout + setup.stderr

        for index, port in enumerate(ports):
            env = {
                **base_env,
                "GUNICORN_BIND": f"127.0.0.1:{port}",
                "GUNICORN_WORKERS": "2",
                "GUNICORN_THREADS": "8",
                # Idle workers stop at once; bound teardown if one does not.
                "GUNICORN_GRACEFUL_TIMEOUT": "5",
            }
            with open(logs / f"instance-{index}.log", "wb") as log:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
                        cwd=ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        base_urls = (f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}")
        for index, (process, base_url) in enumerate(zip(processes, base_urls, strict=True)):
            _wait_until_healthy(process, base_url, logs / f"instance-{index}.log")

        yield Cluster(sandbox=sandbox, base_urls=base_urls, session_id=_log_in(base_urls[0]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT)
        _delete_keys(redis_url, sandbox.base_url)
        sandbox.stop()


def _wait_until_healthy(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn at {base_url} exited ({process.returncode}):\n{tail(log)}")
        try:
            if requests.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass  # not listening yet, or workers still importing Django
        time.sleep(0.1)
    pytest.fail(f"gunicorn at {base_url} did not answer /healthz in time:\n{tail(log)}")


def _log_in(base_url: str) -> str:
    """Log in through the real form once; the session (in the shared DB) opens both."""
    browser = requests.Session()
    login_url = f"{base_url}/accounts/login/"
    page = browser.get(login_url, timeout=REQUEST_TIMEOUT)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, page.text
    answer = browser.post(
        login_url,
        data={"csrfmiddlewaretoken": token.group(1), "username": USERNAME, "password": PASSWORD},
        headers={"Referer": login_url},
        allow_redirects=False,
        timeout=REQUEST_TIMEOUT,
    )
    assert answer.status_code == 302, answer.text
    session_id = browser.cookies.get("sessionid")
    assert session_id
    return session_id


def _delete_keys(redis_url: str, sandbox_url: str) -> None:
    """Remove this run's entries: the site's cache namespace for the sandbox's connection.

    The namespace is leads.services' `env-<digest of base URL and key>`; the
    sandbox's port makes it unique to this run.
    """
    digest = hashlib.sha256(f"{sandbox_url}\n{DEMO_API_KEY}".encode()).hexdigest()[:16]
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"*leadsite:env-{digest}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def test_a_burst_over_two_instances_calls_pollybot_once(cluster):
    cluster.sandbox.app.reset_log()

    answers = cluster.burst(SEED_LEAD)

    assert [a.status_code for a in answers] == [200] * BURST
    assert all("John Doe" in a.text for a in answers)
    assert cluster.upstream_gets(SEED_LEAD) == 1, cluster.upstream_log()


def test_a_missing_lead_over_two_instances_is_asked_once(cluster):
    cluster.sandbox.app.reset_log()

    answers = cluster.burst(MISSING_LEAD)

    assert [a.status_code for a in answers] == [404] * BURST
    assert all("find that lead" in a.text for a in answers)
    assert cluster.upstream_gets(MISSING_LEAD) == 1, cluster.upstream_log()
