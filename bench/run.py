"""`python -m bench` (`make bench`): the lead page under load, against its floor and the seed's way.

One run starts, on 127.0.0.1 only:

- the sandbox (the stand-in PollyBot API) in a thread of this process, over real
  HTTP, with an added latency per answer and enough leads for every case;
- the site under gunicorn with `gunicorn.conf.py` and production settings
  (DEBUG off), with `bench.settings` adding the two comparison views;
- wrk (Debian's package) as the load generator.

It writes bench/results.md and prints it. See bench/README section in the
project README for what each figure means.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import gzip
import hashlib
import http.client
import importlib.metadata
import math
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from bench import workload, wrk
from leads.freshness import HEURISTIC_FRACTION
from sandbox.app import SandboxApp
from sandbox.data import DEMO_API_KEY, SEED_LEAD, demo_leads
from sandbox.server import RunningSandbox, serve

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.md"
SEED_LEAD_ID: str = SEED_LEAD["id"]

# The default added latency of each sandbox answer.
DEFAULT_LATENCY_MS = 20.0
# Measured seconds per cell, and unmeasured seconds before it (connections,
# worker imports, the warm case's first fetch): 8 cells stay well under 5 minutes.
DEFAULT_CELL_SECONDS = 10.0
WARMUP_SECONDS = 2.0
# The floor, the warm page and the seed's approach are measured in turns: this
# many rounds of --seconds / DEFAULT_ROUNDS each (measure_interleaved).
DEFAULT_ROUNDS = 5
# Longer than the slowest answer seen at c=16 (p99 well under 1 s).
POST_WARMUP_PAUSE_SECONDS = 1.5
CONCURRENCIES = (1, 16)
# The sandbox measured alone, to show it is not the bottleneck of the miss case.
SANDBOX_CHECK_SECONDS = 5.0
# The simulated hour of the workload is replayed in this many real seconds.
DEFAULT_REPLAY_SECONDS = 60
# The product's default minimum freshness window (POLLYBOT_CACHE_TTL, leadsite/settings.py
# and .env.example): what the workload's compressed clock scales down.
PRODUCT_CACHE_TTL = 300
# The product's default maximum freshness window (POLLYBOT_CACHE_MAX_TTL, leadsite/settings.py
# and .env.example): scaled down by the same clock. In between, a lead's copy is fresh
# for a tenth of the time the lead had gone unchanged (leads/freshness.py).
PRODUCT_CACHE_MAX_TTL = 3600
# The workload's what-if table: maximum windows, the minimum at PRODUCT_CACHE_TTL
# (a maximum equal to it is the old flat rule: every copy fresh for that long).
WHAT_IF_MAX_TTLS = (300, 900, 1800, 3600, 7200)
# Real seconds between rewriting the sandbox leads' ages for the replay and its
# first moment: the rewrite is long done by then, so the ages are exact at the start.
REPLAY_START_DELAY_SECONDS = 0.5
# Leads the sandbox holds: the demo workspace, then copies of it under new IDs.
# Far more than 16 in flight, so the miss case's concurrent views never share a lead.
SANDBOX_LEADS = 1000
# No 429 may ever distort a figure: the sandbox's hourly limit is out of reach.
SANDBOX_RATE_LIMIT = 10**9
# A Redis database of the benchmark's own, flushed before each phase and at the end.
BENCH_REDIS_URL = "redis://127.0.0.1:6379/12"
REDIS_PROBE_TIMEOUT_SECONDS = 1.0
STARTUP_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
SUBPROCESS_TIMEOUT_SECONDS = 120
REQUEST_TIMEOUT_SECONDS = 30.0
# Lines kept in results.md of each pyinstrument call tree.
PROFILE_LINES = 60
# Lines of a gunicorn log shown when the run fails.
LOG_TAIL_LINES = 40

# --- The targets (ratios and differences from the same run) -------------
# A warm-cache page costs at most this many times the floor's p50 latency.
WARM_P50_MAX_RATIO = 1.5
# A miss costs at most this much more than the sandbox's own p50 (measured alone,
# at the same concurrency), at p50.
MISS_P50_MAX_OVER_SANDBOX_MS = 3.0
# The workload spends at most this share of the seed approach's upstream calls.
WORKLOAD_MAX_SHARE = 0.20
# HTML + CSS + JS of the detail page, compressed as served: under 30 KB (decimal, strict).
PAGE_MAX_BYTES = 30_000

USERNAME = "bench"
FLOOR_CASE = "floor"
WARM_CASE = "detail, warm cache"
MISS_CASE = "detail, every view a miss"
SEED_CASE = "seed's approach"
_ACCESS_LINE = re.compile(r'"[A-Z]+ (\S+) HTTP/[\d.]+" (\d{3}) ')
_CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_STYLESHEET = re.compile(r'<link\b[^>]*\brel="stylesheet"[^>]*\bhref="([^"]+)"')
_SCRIPT = re.compile(r'<script\b[^>]*\bsrc="([^"]+)"')
_HASHED_NAME = re.compile(r"\.[0-9a-f]{12}(?=\.\w+$)")


# --- Setup ----------------------------------------------------------------------


def bench_leads() -> list[dict[str, Any]]:
    """The demo workspace (seed lead first), then copies of it under new, stable IDs."""
    templates = demo_leads(today=datetime.date.today())
    leads = copy.deepcopy(templates)
    index = 0
    while len(leads) < SANDBOX_LEADS:
        lead = copy.deepcopy(templates[index % len(templates)])
        lead["id"] = "lead_" + hashlib.sha256(f"bench-{index}".encode()).hexdigest()[:16]
        leads.append(lead)
        index += 1
    return leads


def redis_reachable() -> bool:
    try:
        import redis
    except ImportError:
        return False
    client = redis.Redis.from_url(BENCH_REDIS_URL, socket_timeout=REDIS_PROBE_TIMEOUT_SECONDS)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def flush_redis(cache_url: str) -> None:
    if not cache_url.startswith("redis://"):
        return
    import redis

    client = redis.Redis.from_url(cache_url)
    try:
        client.flushdb()
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def manage(env: dict[str, str], code: str) -> None:
    done = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py shell failed:\n{done.stdout}{done.stderr}")


@dataclass
class Instance:
    """One gunicorn master (gunicorn.conf.py) and its workers."""

    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path
    env: dict[str, str]

    def worker_pids(self) -> list[int]:
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children")
        if children.exists():
            return [int(p) for p in children.read_text().split()]
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_SECONDS)


def start_instance(name: str, env: dict[str, str], logs: Path) -> Instance:
    port = free_port()
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}"}
    log = logs / f"gunicorn-{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    instance = Instance(
        name=name, process=process, base_url=f"http://127.0.0.1:{port}", log=log, env=env
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn ({name}) exited:\n{log.read_text(errors='replace')}")
        try:
            if requests.get(f"{instance.base_url}/healthz", timeout=1).status_code == 200:
                break
        except (requests.ConnectionError, requests.Timeout):
            pass  # not listening yet
        time.sleep(0.1)
    else:
        instance.stop()
        raise RuntimeError(f"gunicorn ({name}) did not start:\n{log.read_text(errors='replace')}")
    # Every worker imports Django before the first measured request.
    while len(instance.worker_pids()) < int(env.get("GUNICORN_WORKERS", "1")):
        time.sleep(0.1)
    return instance


@dataclass(frozen=True)
class Login:
    """The cookies a browser holds after logging in: its session and its CSRF cookie.

    Every measured request sends both, as a salesperson's browser would: without
    the CSRF cookie, each page would make and set a new CSRF secret.
    """

    session: str
    csrftoken: str

    @property
    def cookies(self) -> dict[str, str]:
        return {"sessionid": self.session, "csrftoken": self.csrftoken}

    @property
    def header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())


def log_in(base_url: str, password: str) -> Login:
    """Log in through the real login form."""
    browser = requests.Session()
    login_url = f"{base_url}/accounts/login/"
    page = browser.get(login_url, timeout=REQUEST_TIMEOUT_SECONDS)
    token = _CSRF_FIELD.search(page.text)
    if token is None:
        raise RuntimeError(f"no login form at {login_url}: HTTP {page.status_code}")
    answer = browser.post(
        login_url,
        data={"csrfmiddlewaretoken": token.group(1), "username": USERNAME, "password": password},
        headers={"Referer": login_url},
        allow_redirects=False,
        timeout=REQUEST_TIMEOUT_SECONDS,
    )
    session = browser.cookies.get("sessionid")
    csrftoken = browser.cookies.get("csrftoken")
    if answer.status_code != 302 or not session or not csrftoken:
        raise RuntimeError(f"login failed: HTTP {answer.status_code}")
    return Login(session=session, csrftoken=csrftoken)


# --- Measurements -----------------------------------------------------------------


@dataclass
class Cell:
    case: str
    concurrency: int
    result: wrk.WrkResult
    upstream_calls: int
    statuses: Counter[str]
    # The rounds' own results, when measured in turns with other cases (measure_interleaved).
    slices: tuple[wrk.WrkResult, ...] = ()

    @property
    def calls_per_view(self) -> float:
        return self.upstream_calls / self.result.requests if self.result.requests else 0.0

    @property
    def not_ok(self) -> int:
        return sum(count for status, count in self.statuses.items() if status != "200")

    @property
    def not_ok_text(self) -> str:
        """The count, and by status when there are any: "0", "12 (500: 10, 302: 2)"."""
        others = {status: n for status, n in self.statuses.most_common() if status != "200"}
        if not others:
            return "0"
        return f"{self.not_ok} ({', '.join(f'{status}: {n}' for status, n in others.items())})"


def access_statuses(log: Path, offset: int) -> Counter[str]:
    """HTTP statuses of the page views gunicorn logged after `offset` (health checks aside)."""
    with open(log, "rb") as text:
        text.seek(offset)
        lines = text.read().decode(errors="replace")
    return Counter(
        status
        for path, status in _ACCESS_LINE.findall(lines)
        if path.startswith(("/leads/", "/bench/"))
    )


def measure(
    *,
    instance: Instance,
    sandbox: RunningSandbox,
    case: str,
    path: str,
    concurrency: int,
    seconds: float,
    session: Login,
    script: Path | None = None,
) -> Cell:
    url = instance.base_url + path
    headers = {"Cookie": session.header}
    wrk.run(url, connections=concurrency, seconds=WARMUP_SECONDS, headers=headers, script=script)
    # Requests cut off by the warm-up's end still finish (and call upstream) in
    # the workers: let them land before the counts and the log offset are taken.
    time.sleep(POST_WARMUP_PAUSE_SECONDS)
    offset = instance.log.stat().st_size
    calls_before = len(sandbox.app.requests)
    result = wrk.run(url, connections=concurrency, seconds=seconds, headers=headers, script=script)
    time.sleep(0.3)
    cell = Cell(
        case=case,
        concurrency=concurrency,
        result=result,
        upstream_calls=len(sandbox.app.requests) - calls_before,
        statuses=access_statuses(instance.log, offset),
    )
    _print_cell(cell)
    return cell


def _print_cell(cell: Cell, note: str = "") -> None:
    result = cell.result
    print(
        f"  {cell.case:<28} c={cell.concurrency:<3} {result.rps:8.1f} req/s"
        f"  p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms"
        f"  upstream/view {cell.calls_per_view:.2f}  non-200 {cell.not_ok_text}{note}",
        flush=True,
    )


def combined(slices: list[wrk.WrkResult]) -> wrk.WrkResult:
    """One result for a case measured in several slices: counts summed, percentiles the
    median of the slices' (wrk reports percentiles, not the latencies behind them)."""
    if len(slices) == 1:
        return slices[0]
    errors: Counter[str] = Counter()
    for result in slices:
        errors.update(result.socket_errors)
    requests_ = sum(r.requests for r in slices)
    seconds = sum(r.seconds for r in slices)
    return wrk.WrkResult(
        requests=requests_,
        seconds=seconds,
        rps=requests_ / seconds if seconds else 0.0,
        p50_ms=statistics.median(r.p50_ms for r in slices),
        p75_ms=statistics.median(r.p75_ms for r in slices),
        p90_ms=statistics.median(r.p90_ms for r in slices),
        p99_ms=statistics.median(r.p99_ms for r in slices),
        socket_errors=dict(errors),
        non_2xx_3xx=sum(r.non_2xx_3xx for r in slices),
    )


def measure_interleaved(
    *,
    instance: Instance,
    sandbox: RunningSandbox,
    cases: list[tuple[str, str]],
    concurrency: int,
    seconds: float,
    rounds: int,
    session: Login,
) -> list[Cell]:
    """The cases in turn, `rounds` times, each for seconds / rounds per round.

    This machine's speed drifts (by 2x within minutes, seen here): measured one
    after the other, two cases can land in different phases of it. In turns,
    each round measures every case within seconds, and `paired_p50_ratio`
    compares them round by round. The order rotates each round, so no case is
    always first after another.
    """
    headers = {"Cookie": session.header}
    for _case, path in cases:
        wrk.run(
            instance.base_url + path,
            connections=concurrency,
            seconds=WARMUP_SECONDS,
            headers=headers,
        )
    time.sleep(POST_WARMUP_PAUSE_SECONDS)
    slices: dict[str, list[wrk.WrkResult]] = {case: [] for case, _ in cases}
    calls: Counter[str] = Counter()
    statuses: dict[str, Counter[str]] = {case: Counter() for case, _ in cases}
    for turn in range(rounds):
        shift = turn % len(cases)
        for case, path in cases[shift:] + cases[:shift]:
            offset = instance.log.stat().st_size
            calls_before = len(sandbox.app.requests)
            slices[case].append(
                wrk.run(
                    instance.base_url + path,
                    connections=concurrency,
                    seconds=seconds / rounds,
                    headers=headers,
                )
            )
            time.sleep(0.3)  # the views still in flight land in this slice's counts
            calls[case] += len(sandbox.app.requests) - calls_before
            statuses[case].update(access_statuses(instance.log, offset))
    cells = []
    for case, _path in cases:
        cell = Cell(
            case=case,
            concurrency=concurrency,
            result=combined(slices[case]),
            upstream_calls=calls[case],
            statuses=statuses[case],
            slices=tuple(slices[case]),
        )
        _print_cell(cell, f"  (median of {rounds} rounds)")
        cells.append(cell)
    return cells


def paired_p50_ratio(cell: Cell, base: Cell) -> float:
    """p50 ÷ the base's p50: the median of the rounds' ratios when both were measured in
    the same rounds (measure_interleaved), else the ratio of the two p50s."""
    if cell.slices and len(cell.slices) == len(base.slices):
        return statistics.median(
            a.p50_ms / b.p50_ms for a, b in zip(cell.slices, base.slices, strict=True)
        )
    return cell.result.p50_ms / base.result.p50_ms


def measure_sandbox(sandbox: RunningSandbox, *, concurrency: int, seconds: float) -> wrk.WrkResult:
    url = f"{sandbox.base_url}/api/v1/leads/{SEED_LEAD_ID}"
    result = wrk.run(
        url,
        connections=concurrency,
        seconds=seconds,
        headers={"Authorization": f"Bearer {DEMO_API_KEY}"},
    )
    print(
        f"  {'sandbox alone':<28} c={concurrency:<3} {result.rps:8.1f} req/s"
        f"  p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms",
        flush=True,
    )
    return result


@dataclass
class Memory:
    instance: str
    workers: list[tuple[int, int]]  # (pid, VmRSS in KiB)
    master_kib: int


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def memory(instance: Instance) -> Memory:
    return Memory(
        instance=instance.name,
        workers=[(pid, rss_kib(pid)) for pid in sorted(instance.worker_pids())],
        master_kib=rss_kib(instance.process.pid),
    )


@dataclass
class Weight:
    item: str
    url: str
    status: int
    encoding: str
    served_bytes: int
    raw_bytes: int
    gzip_bytes: int
    counted_bytes: int
    note: str


def _fetch_raw(base_url: str, path: str, session: Login) -> tuple[int, str, bytes]:
    """Status, Content-Encoding and the body bytes exactly as on the wire."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=REQUEST_TIMEOUT_SECONDS
    )
    try:
        connection.request(
            "GET",
            path,
            headers={"Accept-Encoding": "gzip, br", "Cookie": session.header},
        )
        answer = connection.getresponse()
        return answer.status, answer.getheader("Content-Encoding", "") or "", answer.read()
    finally:
        connection.close()


def _gzip9(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def _static_file(url: str) -> Path | None:
    """The file behind a /static/ URL: in static/, else (hashed names) in STATIC_ROOT."""
    path = urlsplit(url).path
    if not path.startswith("/static/"):
        return None
    relative = path.removeprefix("/static/")
    for candidate in (
        ROOT / "static" / relative,
        ROOT / "static" / _HASHED_NAME.sub("", relative),
    ):
        if candidate.is_file():
            return candidate
    return None


def page_weight(base_url: str, session: Login) -> list[Weight]:
    path = f"/leads/{SEED_LEAD_ID}/"
    status, encoding, body = _fetch_raw(base_url, path, session)
    html = gzip.decompress(body) if encoding == "gzip" else body
    rows = [
        Weight(
            item="HTML",
            url=path,
            status=status,
            encoding=encoding or "identity",
            served_bytes=len(body),
            raw_bytes=len(html),
            gzip_bytes=_gzip9(html),
            counted_bytes=len(body),
            note="as served" if encoding else "served uncompressed: counted uncompressed",
        )
    ]
    text = html.decode(errors="replace")
    assets = [("CSS", url) for url in _STYLESHEET.findall(text)]
    assets += [("JS", url) for url in _SCRIPT.findall(text)]
    for kind, url in assets:
        status, encoding, body = _fetch_raw(base_url, urlsplit(url).path, session)
        on_disk = _static_file(url)
        raw = on_disk.read_bytes() if on_disk else b""
        if status == 200:
            plain = gzip.decompress(body) if encoding == "gzip" else body
            rows.append(
                Weight(
                    item=kind,
                    url=url,
                    status=status,
                    encoding=encoding or "identity",
                    served_bytes=len(body),
                    raw_bytes=len(plain),
                    gzip_bytes=_gzip9(plain),
                    counted_bytes=len(body),
                    note="as served",
                )
            )
        else:
            rows.append(
                Weight(
                    item=kind,
                    url=url,
                    status=status,
                    encoding="-",
                    served_bytes=0,
                    raw_bytes=len(raw),
                    gzip_bytes=_gzip9(raw),
                    counted_bytes=_gzip9(raw),
                    note=(
                        f"not served by the site (HTTP {status}): gzip -9 of "
                        f"{on_disk.relative_to(ROOT) if on_disk else 'the file (not found!)'}"
                        " in-process"
                    ),
                )
            )
    if not any(row.item == "JS" for row in rows):
        rows.append(Weight("JS", "(none)", 0, "-", 0, 0, 0, 0, "the page loads no script"))
    return rows


@dataclass
class WorkloadResult:
    views: int
    leads: int
    distinct_leads: int
    replay_seconds: int
    scaled_ttl: int
    scaled_max_ttl: int
    site_calls: int
    site_statuses: Counter[int]
    site_first_calls: int
    site_refetches: int
    seed_calls: int
    seed_statuses: Counter[int]
    # The freshness rule on the schedule, with the data's (simulated) ages.
    rule_calls: int
    rule_refetches: int
    # Window kind ("maximum", "between", "minimum") -> viewed leads whose first
    # copy got it, and -> copies (upstream calls) that got it.
    rule_window_leads: Counter[str]
    rule_window_copies: Counter[str]
    # Simulated seconds each viewed lead (with a usable updatedAt) had gone
    # unchanged when the hour began, ascending (negative: updatedAt after it).
    viewed_ages: list[float]
    # POLLYBOT_CACHE_MAX_TTL (simulated s, POLLYBOT_CACHE_TTL at PRODUCT_CACHE_TTL) -> calls.
    what_if: dict[int, int]
    per_rank: list[tuple[str, int, int, int]] = field(default_factory=list)


def lead_gets(sandbox: RunningSandbox, start: int) -> list[str]:
    prefix = "/api/v1/leads/"
    return [
        r.path.removeprefix(prefix)
        for r in sandbox.app.requests[start:]
        if r.method == "GET" and r.path.startswith(prefix) and r.path != prefix.rstrip("/")
    ]


def run_workload(
    *,
    instance: Instance,
    sandbox: RunningSandbox,
    leads: list[dict[str, Any]],
    session: Login,
    replay_seconds: int,
    scaled_ttl: int,
    scaled_max_ttl: int,
) -> WorkloadResult:
    """Replay the workload through the site, then the seed's approach; count upstream calls.

    `leads` is the sandbox's data as served (bench_leads()): its ages are the
    simulated ones. For the site's replay the sandbox's copies are rewritten
    so each lead's real age is its simulated age times the clock's scale
    (workload.with_scaled_ages), then restored: later requests (the seed's
    replay, any profile) see the data as it was.
    """
    ids = [lead["id"] for lead in leads]
    # Popularity ranks: a fixed shuffle, so every run replays the same views.
    popular = random.Random(workload.SEED).sample(ids, workload.LEADS)  # noqa: S311
    views = workload.schedule(popular)
    scale = replay_seconds / workload.SIMULATED_SECONDS
    cookies = session.cookies

    # The hour begins (simulated second 0) at `begins`, in real Unix time.
    begins = time.time() + REPLAY_START_DELAY_SECONDS
    updated_at = workload.simulated_updated_at(leads, start=begins)
    sandbox.app.set_leads(workload.with_scaled_ages(leads, start=begins, scale=scale))
    try:
        time.sleep(max(0.0, begins - time.time()))
        start = len(sandbox.app.requests)
        print(
            f"  replaying {len(views)} views through the site in {replay_seconds} s …", flush=True
        )
        site_statuses = workload.replay(
            views,
            url_for=lambda lead: f"{instance.base_url}/leads/{lead}/",
            cookies=cookies,
            time_scale=scale,
        )
        time.sleep(0.3)
        site_gets = lead_gets(sandbox, start)
    finally:
        sandbox.app.set_leads(leads)

    start = len(sandbox.app.requests)
    print(f"  replaying {len(views)} views through the seed's approach …", flush=True)
    seed_statuses = workload.replay(
        views,
        url_for=lambda lead: f"{instance.base_url}/bench/seed/{lead}/",
        cookies=cookies,
        time_scale=None,
    )
    time.sleep(0.3)
    seed_gets = lead_gets(sandbox, start)

    first = len(set(site_gets))
    views_per_lead = Counter(view.lead_id for view in views)
    calls_per_lead = Counter(site_gets)
    per_rank = [
        (
            f"{lo}-{hi}",
            sum(views_per_lead[i] for i in popular[lo - 1 : hi]),
            sum(calls_per_lead[i] for i in popular[lo - 1 : hi]),
            sum(1 for i in popular[lo - 1 : hi] if views_per_lead[i]),
        )
        for lo, hi in ((1, 10), (11, 50), (51, 100), (101, 300))
    ]
    # The rule in simulated seconds: the product's defaults, which the site runs
    # scaled (scaled_ttl / scale == PRODUCT_CACHE_TTL, and so for the maximum).
    rule = workload.fetches_by_freshness_rule(
        views, updated_at=updated_at, min_ttl=PRODUCT_CACHE_TTL, max_ttl=PRODUCT_CACHE_MAX_TTL
    )
    first_copies: dict[str, workload.Fetch] = {}
    for fetch in rule:
        first_copies.setdefault(fetch.lead_id, fetch)

    def kind(fetch: workload.Fetch) -> str:
        return workload.window_kind(
            fetch.window, min_ttl=PRODUCT_CACHE_TTL, max_ttl=PRODUCT_CACHE_MAX_TTL
        )

    viewed_ages = sorted(
        -age for lead in views_per_lead if (age := updated_at.get(lead)) is not None
    )
    return WorkloadResult(
        views=len(views),
        leads=len(popular),
        distinct_leads=len(views_per_lead),
        replay_seconds=replay_seconds,
        scaled_ttl=scaled_ttl,
        scaled_max_ttl=scaled_max_ttl,
        site_calls=len(site_gets),
        site_statuses=site_statuses,
        site_first_calls=first,
        site_refetches=len(site_gets) - first,
        seed_calls=len(seed_gets),
        seed_statuses=seed_statuses,
        rule_calls=len(rule),
        rule_refetches=len(rule) - len(first_copies),
        rule_window_leads=Counter(kind(fetch) for fetch in first_copies.values()),
        rule_window_copies=Counter(kind(fetch) for fetch in rule),
        viewed_ages=viewed_ages,
        what_if={
            max_ttl: workload.calls_by_freshness_rule(
                views, updated_at=updated_at, min_ttl=PRODUCT_CACHE_TTL, max_ttl=max_ttl
            )
            for max_ttl in WHAT_IF_MAX_TTLS
        },
        per_rank=per_rank,
    )


def profile(env: dict[str, str], session: Login, paths: list[str]) -> str:
    """pyinstrument's call tree of `paths`, served in-process with an instance's environment."""
    try:
        importlib.metadata.version("pyinstrument")
    except importlib.metadata.PackageNotFoundError:
        return "(pyinstrument is not installed: `pip install 'pyinstrument>=5,<6'` for a profile)"
    # Templates may have gained a static file since the run's collectstatic.
    manage(
        env,
        "from django.core.management import call_command; "
        "call_command('collectstatic', verbosity=0, interactive=False)",
    )
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "bench.profile", *paths],
        cwd=ROOT,
        env={**env, "BENCH_SESSION": session.session, "BENCH_CSRFTOKEN": session.csrftoken},
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        return f"(profile failed: {done.stderr.strip()[-2000:]})"
    kept: list[str] = []
    for block in done.stdout.split("=== ")[1:]:
        lines = [line.rstrip() for line in block.splitlines() if line.strip()]
        kept += [f"=== {lines[0]}", *lines[1:PROFILE_LINES]]
        if len(lines) > PROFILE_LINES:
            kept.append(f"... ({len(lines) - PROFILE_LINES} more lines)")
    return "\n".join(kept)


# --- The report -------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = "unknown"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    import django

    return {
        "CPUs (nproc)": str(os.cpu_count()),
        "CPU model": cpu,
        "Memory": mem,
        "Kernel": platform.release(),
        "Python": platform.python_version(),
        "Django": django.get_version(),
        "gunicorn": importlib.metadata.version("gunicorn"),
        "Load generator": wrk.wrk_version(),
        "Date (UTC)": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
    }


def _f(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


def _signed(value: float, digits: int = 2) -> str:
    """A difference with its sign: "+1.25", "-0.40"."""
    return ("+" if value >= 0 else "-") + _f(abs(value), digits)


def _age(seconds: float) -> str:
    """A duration for prose: "50 min", "10 h", "3.5 days"."""
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f}".removesuffix(".0") + " h"
    return f"{seconds / 86400:.1f}".removesuffix(".0") + " days"


def _rule_in_words() -> str:
    """The product's default freshness rule, for the report's prose."""
    return (
        f"{HEURISTIC_FRACTION:.0%} of the time the lead had gone unchanged when its copy was "
        f"fetched, at least {PRODUCT_CACHE_TTL} s "
        f"and at most {PRODUCT_CACHE_MAX_TTL} s: the minimum for a lead changed within "
        f"{_age(PRODUCT_CACHE_TTL / HEURISTIC_FRACTION)} of the fetch, the maximum for one "
        f"unchanged for {_age(PRODUCT_CACHE_MAX_TTL / HEURISTIC_FRACTION)} or more"
    )


@dataclass
class Target:
    name: str
    measured: str
    limit: str
    met: bool


_WINDOW_KINDS = ("maximum", "between", "minimum")


def _what_if_note(max_ttl: int) -> str:
    if max_ttl <= PRODUCT_CACHE_TTL:
        return f" (the old flat {PRODUCT_CACHE_TTL} s rule)"
    if max_ttl == PRODUCT_CACHE_MAX_TTL:
        return " (the product's default)"
    return ""


def _window_lines(work: WorkloadResult) -> list[str]:
    """Section 2's table of the windows the rule gave the viewed leads, with their ages."""
    known = work.viewed_ages
    ages = [age for age in known if age >= 0]
    if ages:
        span = (
            f"When the hour began, the viewed leads had gone unchanged for {_age(ages[0])} "
            f"(the youngest) to {_age(ages[-1])} (the oldest), {_age(statistics.median(ages))} "
            "at the median"
        )
    else:
        span = "No viewed lead has a usable updatedAt before the hour"
    if future := len(known) - len(ages):
        span += f"; {future} viewed leads have an updatedAt after the hour began"
    if unknown := work.distinct_leads - len(known):
        span += f"; {unknown} viewed leads have no usable updatedAt (the minimum window)"
    labels = {
        "maximum": f"the maximum, {PRODUCT_CACHE_MAX_TTL} s (unchanged for "
        f"{_age(PRODUCT_CACHE_MAX_TTL / HEURISTIC_FRACTION)} or more)",
        "between": "in between",
        "minimum": f"the minimum, {PRODUCT_CACHE_TTL} s (changed within the last "
        f"{_age(PRODUCT_CACHE_TTL / HEURISTIC_FRACTION)}, or no usable or a future updatedAt)",
    }
    return [
        f"{span}. The demo data's dates are relative to the day of the run (sandbox/data.py), "
        "so its youngest leads' ages, and with them these windows, depend on the time of day "
        "the benchmark runs. The windows the rule gave (simulated ages; a lead's later copies "
        "may get a longer window than its first, as it ages through the hour):",
        "",
        "| freshness window (simulated) | viewed leads (window of their first copy) "
        "| copies fetched (the rule's calls) |",
        "| --- | ---: | ---: |",
        *[
            f"| {labels[kind]} | {work.rule_window_leads[kind]} | {work.rule_window_copies[kind]} |"
            for kind in _WINDOW_KINDS
        ],
        "",
    ]


def render(
    *,
    info: dict[str, str],
    setup: list[str],
    cells: list[Cell],
    sandbox_alone: dict[int, wrk.WrkResult],
    latency_ms: float,
    work: WorkloadResult,
    memories: list[Memory],
    weights: list[Weight],
    targets: list[Target],
    profiles: list[tuple[str, str]],
) -> str:
    out = ["# Benchmark results", ""]
    out += [
        "Written by `make bench` (`python -m bench`); every figure below is from this one run.",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        *[f"| {k} | {v} |" for k, v in info.items()],
        "",
        "## Setup",
        "",
        *[f"- {line}" for line in setup],
        "",
        "## Targets",
        "",
        "| target | measured | limit | |",
        "| --- | --- | --- | --- |",
        *[
            f"| {t.name} | {t.measured} | {t.limit} | {'met' if t.met else '**MISSED**'} |"
            for t in targets
        ],
        "",
        "## 1. Requests per second and latency",
        "",
        "Closed loop (wrk): each of the *c* connections sends its next request as soon as the",
        "previous answer arrives. Ratios are to the floor at the same concurrency. Upstream",
        "calls include those of the (at most *c*) views still in flight when wrk stops.",
        "The floor, the warm page and the seed's approach take turns (rounds, below): their",
        "p50 and p99 are the medians of the rounds' own, and p50 ÷ floor is the median of",
        "the rounds' ratios, each round's cases measured within seconds of each other.",
        "",
        "| case | c | req/s | p50 ms | p99 ms | req/s ÷ floor | p50 ÷ floor | p99 ÷ floor "
        "| upstream calls / view | non-200 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    floor = {c.concurrency: c for c in cells if c.case == FLOOR_CASE}
    for cell in cells:
        base = floor[cell.concurrency].result
        r = cell.result
        p50_ratio = paired_p50_ratio(cell, floor[cell.concurrency])
        out.append(
            f"| {cell.case} | {cell.concurrency} | {_f(r.rps, 1)} | {_f(r.p50_ms)} "
            f"| {_f(r.p99_ms)} | {_f(r.rps / base.rps)} | {_f(p50_ratio)} "
            f"| {_f(r.p99_ms / base.p99_ms)} | {_f(cell.calls_per_view)} | {cell.not_ok_text} |"
        )
    out += [
        "",
        f"The sandbox alone (wrk straight at it; {latency_ms:g} ms added to each answer). Its "
        "p50 is the sandbox's latency as measured, not assumed: the miss target subtracts it, "
        "at the same concurrency.",
        "",
        "| c | req/s | p50 ms | p99 ms |",
        "| ---: | ---: | ---: | ---: |",
        *[
            f"| {c} | {_f(r.rps, 1)} | {_f(r.p50_ms)} | {_f(r.p99_ms)} |"
            for c, r in sorted(sandbox_alone.items())
        ],
        "",
    ]
    miss16 = next(
        (c for c in cells if c.case == MISS_CASE and c.concurrency == max(CONCURRENCIES)), None
    )
    if miss16 is not None and 16 in sandbox_alone:
        verdict = (
            "so the sandbox is not the bottleneck of the miss case"
            if sandbox_alone[16].rps > 1.5 * miss16.result.rps
            else "**so the sandbox may limit the miss case**"
        )
        out += [
            f"At c=16 the sandbox alone answers {_f(sandbox_alone[16].rps, 0)} req/s, "
            f"{_f(sandbox_alone[16].rps / miss16.result.rps, 1)}x what the miss case asks of it "
            f"({_f(miss16.result.rps, 0)} req/s), {verdict}.",
            "",
        ]
    seed_ratio = work.site_calls / work.seed_calls if work.seed_calls else float("nan")
    out += [
        "## 2. Upstream calls for a replayed workload",
        "",
        f"{work.views:,} page views over {work.leads} leads (Zipf-like popularity, s = "
        f"{workload.ZIPF_EXPONENT}; {work.distinct_leads} of the {work.leads} leads are viewed at "
        f"least once), at uniformly random moments of one simulated hour (seed {workload.SEED}).",
        "",
        f"**The freshness rule** (leads/freshness.py, RFC 9111 section 4.2.2's heuristic): a "
        f"lead's copy is fresh for {_rule_in_words()}. So the calls depend on the leads' ages "
        "as much as on the views: the table of windows below shows the ages of this data.",
        "",
        f"**Compressed clock.** The hour is replayed in {work.replay_seconds} s of real time "
        f"(1 real second = {workload.SIMULATED_SECONDS // work.replay_seconds} simulated seconds), "
        f"through the running site, with every view sent at its scaled moment. The site's "
        f"freshness bounds are scaled by the same factor: POLLYBOT_CACHE_TTL={work.scaled_ttl} s "
        f"and POLLYBOT_CACHE_MAX_TTL={work.scaled_max_ttl} s real = {PRODUCT_CACHE_TTL} s and "
        f"{PRODUCT_CACHE_MAX_TTL} s simulated (the product's defaults). So are the leads' ages: "
        "for the replay, each sandbox lead's updatedAt is moved so that its real age when the "
        "replay starts is its age in the data times the same factor (restored afterwards), and "
        "every window the site computes is the simulated one, scaled. Upstream calls are counted "
        "by the sandbox. The seed's approach keeps no state, so its count does not depend on "
        "timing: the same views are sent back to back.",
        "",
        "| | page views | upstream calls | share of the seed approach's calls | HTTP statuses |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| our site (POLLYBOT_CACHE_TTL = {PRODUCT_CACHE_TTL} s, POLLYBOT_CACHE_MAX_TTL = "
        f"{PRODUCT_CACHE_MAX_TTL} s simulated) | {work.views:,} | {work.site_calls:,} "
        f"| {seed_ratio:.1%} | {dict(sorted(work.site_statuses.items()))} |",
        f"| the seed's approach | {work.views:,} | {work.seed_calls:,} | 100% "
        f"| {dict(sorted(work.seed_statuses.items()))} |",
        "",
        f"Of the site's {work.site_calls:,} calls, {work.site_first_calls} are first views of a "
        f"lead (the least any cache can spend: {work.site_first_calls / work.views:.1%} of the "
        f"views) and {work.site_refetches} re-fetch a lead whose copy had passed its freshness "
        f"window. The freshness rule applied to the schedule and the data's ages predicts "
        f"{work.rule_calls} calls ({work.rule_calls - work.rule_refetches} first views and "
        f"{work.rule_refetches} re-fetches; a check on the replay, not a measurement).",
        "",
        *_window_lines(work),
        "By popularity rank:",
        "",
        "| leads (rank) | viewed leads | page views | upstream calls |",
        "| --- | ---: | ---: | ---: |",
        *[f"| {rank} | {viewed} | {v} | {c} |" for rank, v, c, viewed in work.per_rank],
        "",
        "What-if, computed from the same schedule and the same ages with the freshness rule "
        f"(not measured), POLLYBOT_CACHE_TTL = {PRODUCT_CACHE_TTL} s throughout; a maximum of "
        f"{PRODUCT_CACHE_TTL} s is the old flat rule (every copy fresh for {PRODUCT_CACHE_TTL} s, "
        "whatever the lead's age):",
        "",
        f"| POLLYBOT_CACHE_MAX_TTL (POLLYBOT_CACHE_TTL = {PRODUCT_CACHE_TTL} s) "
        "| upstream calls | share of the seed's |",
        "| ---: | ---: | ---: |",
        *[
            f"| {max_ttl} s{_what_if_note(max_ttl)} | {calls} | {calls / work.views:.1%} |"
            for max_ttl, calls in work.what_if.items()
        ],
        "",
        "## 3. Resident memory per gunicorn worker (after its run)",
        "",
        "| instance | workers | RSS per worker, MiB (min / median / max) | master, MiB |",
        "| --- | ---: | --- | ---: |",
    ]
    for mem in memories:
        rss = [kib / 1024 for _, kib in mem.workers] or [0.0]
        out.append(
            f"| {mem.instance} | {len(mem.workers)} | {_f(min(rss), 1)} / "
            f"{_f(statistics.median(rss), 1)} / {_f(max(rss), 1)} "
            f"| {_f(mem.master_kib / 1024, 1)} |"
        )
    total = sum(w.counted_bytes for w in weights)
    out += [
        "",
        "## 4. The detail page's weight (the seed lead)",
        "",
        "Fetched with `Accept-Encoding: gzip, br`; the bytes on the wire are counted where the",
        "site serves a file, else the file gzip -9 compressed in-process (said in the row).",
        "",
        "| item | URL | HTTP | Content-Encoding | on the wire | uncompressed | gzip -9 "
        "| counted | note |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- |",
        *[
            f"| {w.item} | `{w.url}` | {w.status or '-'} | {w.encoding} | {w.served_bytes:,} "
            f"| {w.raw_bytes:,} | {w.gzip_bytes:,} | {w.counted_bytes:,} | {w.note} |"
            for w in weights
        ],
        f"| **total** | | | | | | | **{total:,}** | |",
        "",
    ]
    if profiles:
        out += ["## Why targets were missed", ""]
        for title, text in profiles:
            out += [f"### {title}", "", text, ""]
    return "\n".join(out).rstrip() + "\n"


# --- The run ----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=DEFAULT_LATENCY_MS)
    parser.add_argument("--seconds", type=float, default=DEFAULT_CELL_SECONDS, help="per cell")
    parser.add_argument(
        "--rounds",
        type=int,
        default=DEFAULT_ROUNDS,
        help="turns the floor, warm and seed cases take (each --seconds / --rounds a turn)",
    )
    parser.add_argument("--replay-seconds", type=int, default=DEFAULT_REPLAY_SECONDS)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--keep-scratch", action="store_true", help="keep the gunicorn logs and scratch database"
    )
    args = parser.parse_args(argv)

    # wrk takes a whole number of seconds.
    per_round = args.seconds / args.rounds if args.rounds >= 1 else 0
    if per_round < 1 or not per_round.is_integer() or not float(args.seconds).is_integer():
        parser.error("--seconds / --rounds must be a whole number of seconds, at least 1")
    # Both freshness bounds must scale to whole seconds (the settings are integers).
    windows = (PRODUCT_CACHE_TTL, PRODUCT_CACHE_MAX_TTL)
    simulated = workload.SIMULATED_SECONDS
    step = math.lcm(*(simulated // math.gcd(simulated, window) for window in windows))
    if args.replay_seconds < 1 or args.replay_seconds % step:
        parser.error(
            f"--replay-seconds must scale the {PRODUCT_CACHE_TTL} s and "
            f"{PRODUCT_CACHE_MAX_TTL} s freshness windows to whole seconds "
            f"(a multiple of {step})"
        )
    scaled_ttl = PRODUCT_CACHE_TTL * args.replay_seconds // simulated
    scaled_max_ttl = PRODUCT_CACHE_MAX_TTL * args.replay_seconds // simulated
    wrk.wrk_path()

    use_redis = redis_reachable()
    cache_url = BENCH_REDIS_URL if use_redis else "locmemcache://"
    # gunicorn.conf.py's own default (2 x cores + 1) with a shared cache; a
    # local-memory cache is per process, so one worker keeps one cache.
    workers = str(min((os.cpu_count() or 1) * 2 + 1, 12)) if use_redis else "1"

    scratch = Path(tempfile.mkdtemp(prefix="leadsite-bench-"))
    password = secrets.token_urlsafe(16)
    # Made once: the workload reads the ages of the very data the sandbox serves.
    leads = bench_leads()
    sandbox = serve(
        SandboxApp(
            leads=leads,
            latency=args.latency_ms / 1000,
            rate_limit=SANDBOX_RATE_LIMIT,
        )
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        # Plain HTTP on loopback: no TLS terminator in front, so no redirect to https
        # and cookies that travel over http.
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "DATABASE_URL": f"sqlite:///{scratch / 'site.sqlite3'}",
        "CACHE_URL": cache_url,
        "POLLYBOT_BASE_URL": sandbox.base_url,
        "POLLYBOT_API_KEY": DEMO_API_KEY,
        "TIME_ZONE": "UTC",
        "GUNICORN_WORKERS": workers,
        # No worker recycling mid-run: a restart would land in the percentiles
        # and the memory figure would describe a fresh worker.
        "GUNICORN_MAX_REQUESTS": "0",
        "BENCH_FLOOR_HTML": str(scratch / "floor.html"),
        # collectstatic runs into the scratch directory, as a deploy would run it.
        "STATIC_ROOT": str(scratch / "staticfiles"),
        "PYTHONUNBUFFERED": "1",
    }
    # The product's default freshness rule, whatever the shell running the benchmark says.
    env.pop("POLLYBOT_CACHE_TTL", None)
    env.pop("POLLYBOT_CACHE_MAX_TTL", None)
    instances: list[Instance] = []
    cells: list[Cell] = []
    sandbox_alone: dict[int, wrk.WrkResult] = {}
    memories: list[Memory] = []
    try:
        print("Setting up: scratch database, login, sandbox", flush=True)
        manage(
            env,
            "from django.core.management import call_command; "
            "from django.contrib.auth import get_user_model; "
            "call_command('migrate', verbosity=0, interactive=False); "
            "call_command('collectstatic', verbosity=0, interactive=False); "
            f"get_user_model().objects.create_user({USERNAME!r}, password={password!r})",
        )
        info = machine()
        if use_redis:
            import redis

            client = redis.Redis.from_url(BENCH_REDIS_URL)
            info["Redis"] = str(client.info("server")["redis_version"])
            client.close()

        # Phase 1: the site with the product's default freshness rule, the floor and the
        # seed's approach.
        flush_redis(cache_url)
        site = start_instance("site", env, scratch)
        instances.append(site)
        session = log_in(site.base_url, password)
        page = requests.get(
            f"{site.base_url}/leads/{SEED_LEAD_ID}/",
            cookies=session.cookies,
            allow_redirects=False,
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
        if page.status_code != 200 or "John Doe" not in page.text:
            raise RuntimeError(f"the seed lead's page did not load: HTTP {page.status_code}")
        Path(env["BENCH_FLOOR_HTML"]).write_bytes(page.content)
        weights = page_weight(site.base_url, session)

        print("Phase 1: floor, warm cache, seed's approach", flush=True)
        cases = [
            (FLOOR_CASE, "/bench/floor/"),
            (WARM_CASE, f"/leads/{SEED_LEAD_ID}/"),
            (SEED_CASE, f"/bench/seed/{SEED_LEAD_ID}/"),
        ]
        for concurrency in CONCURRENCIES:
            cells += measure_interleaved(
                instance=site,
                sandbox=sandbox,
                cases=cases,
                concurrency=concurrency,
                seconds=args.seconds,
                rounds=args.rounds,
                session=session,
            )
        for concurrency in CONCURRENCIES:
            sandbox_alone[concurrency] = measure_sandbox(
                sandbox, concurrency=concurrency, seconds=SANDBOX_CHECK_SECONDS
            )
        memories.append(memory(site))
        site.stop()

        # Phase 2: every view a miss: freshness window 0, and each view a different lead.
        print("Phase 2: every view a miss", flush=True)
        flush_redis(cache_url)
        miss_env = {**env, "POLLYBOT_CACHE_TTL": "0"}
        miss = start_instance("miss", miss_env, scratch)
        instances.append(miss)
        lead_paths = [f"/leads/{lead['id']}/" for lead in leads]
        for concurrency in CONCURRENCIES:
            script = wrk.cycling_script(
                lead_paths,
                threads=max(1, min(concurrency, os.cpu_count() or 1)),
                directory=scratch,
            )
            cells.append(
                measure(
                    instance=miss,
                    sandbox=sandbox,
                    case=MISS_CASE,
                    path="/",
                    concurrency=concurrency,
                    seconds=args.seconds,
                    session=session,
                    script=script,
                )
            )
        memories.append(memory(miss))
        miss.stop()
        # Table order: floor, warm, miss, seed, at each concurrency.
        order = [FLOOR_CASE, WARM_CASE, MISS_CASE, SEED_CASE]
        cells.sort(key=lambda c: (c.concurrency, order.index(c.case)))

        # Phase 3: the replayed workload, on a compressed clock.
        print("Phase 3: replayed workload", flush=True)
        flush_redis(cache_url)
        work_env = {
            **env,
            "POLLYBOT_CACHE_TTL": str(scaled_ttl),
            "POLLYBOT_CACHE_MAX_TTL": str(scaled_max_ttl),
        }
        replay = start_instance("workload", work_env, scratch)
        instances.append(replay)
        work = run_workload(
            instance=replay,
            sandbox=sandbox,
            leads=leads,
            session=session,
            replay_seconds=args.replay_seconds,
            scaled_ttl=scaled_ttl,
            scaled_max_ttl=scaled_max_ttl,
        )
        memories.append(memory(replay))
        replay.stop()

        # Targets, and a profile for each one missed.
        targets: list[Target] = []
        profiles: list[tuple[str, str]] = []
        by = {(c.case, c.concurrency): c.result for c in cells}
        cell_of = {(c.case, c.concurrency): c for c in cells}
        warm_missed = False
        for c in CONCURRENCIES:
            ratio = paired_p50_ratio(cell_of[(WARM_CASE, c)], cell_of[(FLOOR_CASE, c)])
            warm_missed |= ratio > WARM_P50_MAX_RATIO
            targets.append(
                Target(
                    f"warm-cache page p50 ÷ floor p50, c={c} (median of the rounds' ratios)",
                    f"{_f(ratio)}x ({_f(by[(WARM_CASE, c)].p50_ms)} ms vs "
                    f"{_f(by[(FLOOR_CASE, c)].p50_ms)} ms)",
                    f"≤ {WARM_P50_MAX_RATIO}x",
                    ratio <= WARM_P50_MAX_RATIO,
                )
            )
        miss_missed = False
        for c in CONCURRENCIES:
            # The sandbox's latency as measured (wrk straight at it, same c), not as
            # configured: its own HTTP and request handling are not the site's cost.
            miss_p50, sandbox_p50 = by[(MISS_CASE, c)].p50_ms, sandbox_alone[c].p50_ms
            over = miss_p50 - sandbox_p50
            miss_missed |= over > MISS_P50_MAX_OVER_SANDBOX_MS
            targets.append(
                Target(
                    f"miss p50 minus the sandbox's own p50 (measured alone, same c), c={c}",
                    f"{_signed(over)} ms (miss p50 {_f(miss_p50)} ms; "
                    f"the sandbox alone: p50 {_f(sandbox_p50)} ms)",
                    f"≤ +{MISS_P50_MAX_OVER_SANDBOX_MS:g} ms",
                    over <= MISS_P50_MAX_OVER_SANDBOX_MS,
                )
            )
        share = work.site_calls / work.seed_calls
        targets.append(
            Target(
                "workload upstream calls ÷ the seed approach's",
                f"{share:.1%} ({work.site_calls} of {work.seed_calls})",
                f"≤ {WORKLOAD_MAX_SHARE:.0%}",
                share <= WORKLOAD_MAX_SHARE,
            )
        )
        total = sum(w.counted_bytes for w in weights)
        targets.append(
            Target(
                "page weight, HTML + CSS + JS, compressed as served",
                f"{total:,} bytes",
                f"< {PAGE_MAX_BYTES:,} bytes",
                total < PAGE_MAX_BYTES,
            )
        )
        if warm_missed:
            print("Profiling the warm-cache page (pyinstrument) …", flush=True)
            profiles.append(
                (
                    "Warm-cache page vs the floor (pyinstrument)",
                    "One process, Django's full handler and middleware, one request at a time "
                    "(bench/profile.py); the time above the floor's is the page's own work.\n\n"
                    "```text\n"
                    + profile(env, session, ["/bench/floor/", f"/leads/{SEED_LEAD_ID}/"])
                    + "\n```",
                )
            )
        if miss_missed:
            print("Profiling a miss (pyinstrument) …", flush=True)
            profiles.append(
                (
                    "A miss (pyinstrument)",
                    "POLLYBOT_CACHE_TTL=0, one request at a time, in one process "
                    "(bench/profile.py); the sandbox's latency shows as socket reads.\n\n"
                    "```text\n" + profile(miss_env, session, [f"/leads/{SEED_LEAD_ID}/"]) + "\n```",
                )
            )
        if share > WORKLOAD_MAX_SHARE:
            profiles.append(
                (
                    "The workload's upstream calls",
                    "A CPU profile cannot explain a call count; the calls' breakdown in section 2 "
                    f"does. With the product's freshness rule ({_rule_in_words()}), "
                    f"{work.site_refetches} of the {work.site_calls} calls re-fetch a lead whose "
                    f"copy had passed its window, and {work.site_first_calls} are first views "
                    f"({work.site_first_calls / work.views:.1%} of all views: the floor for any "
                    "cache that fetches a lead on its first view). Section 2 shows which windows "
                    "the data's ages gave, and the what-if table the maximum window the target "
                    "needs on this workload; changing it is a product decision (how stale may a "
                    "lead be), not made here.",
                )
            )
    except BaseException:
        for instance in instances:
            tail = instance.log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            print(f"--- gunicorn ({instance.name}), last lines:", *tail, sep="\n", file=sys.stderr)
        raise
    finally:
        for instance in instances:
            instance.stop()
        flush_redis(cache_url)
        sandbox.stop()
        if args.keep_scratch:
            print(f"Scratch directory kept: {scratch}", flush=True)
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    setup = [
        f"Sandbox: in this process, over HTTP (wsgiref, threaded, HTTP/1.0: it closes every "
        f"connection, so the site's keep-alive pool cannot reuse one here), "
        f"{args.latency_ms:g} ms added to every answer, {SANDBOX_LEADS} leads, rate limit "
        "out of reach. Its latency is measured, not assumed: wrk straight at it at each "
        "concurrency (section 1), and the miss target subtracts that p50.",
        f"Site: gunicorn with `gunicorn.conf.py` (gthread, {workers} workers x "
        f"{os.environ.get('GUNICORN_THREADS', '4')} threads), production settings "
        "(DEBUG off, a random SECRET_KEY, ALLOWED_HOSTS=127.0.0.1), `bench.settings` "
        "(the product's settings + the two comparison views' URLs), a scratch SQLite database, "
        "gunicorn's access log on.",
        "Plain HTTP on loopback, so SECURE_SSL_REDIRECT, SESSION_COOKIE_SECURE and "
        "CSRF_COOKIE_SECURE are off (in production TLS ends in the proxy in front).",
        "Worker recycling (GUNICORN_MAX_REQUESTS) off for the run, so no restart lands "
        "in the percentiles and the memory figures describe workers that served the run.",
        (
            f"Cache: Redis at {BENCH_REDIS_URL} (flushed before each phase), shared by the workers."
            if use_redis
            else "Cache: local memory (no Redis at 127.0.0.1:6379), so 1 worker: one cache."
        ),
        "Cases: *floor* = the seed lead's page bytes, captured once through the site, returned "
        "by a bare view behind the same middleware and login; *warm cache* = the product's "
        f"detail page, the lead cached; *every view a miss* = the product's detail page with "
        f"POLLYBOT_CACHE_TTL=0, each view a different one of {SANDBOX_LEADS} leads (no shared "
        "single-flight); *seed's approach* = `requests.get` per view (no Session, no cache), "
        "the product's `Lead` and template.",
        f"wrk: {WARMUP_SECONDS:g} s warm-up then {args.seconds:g} s measured per cell, one wrk "
        "thread per core at most. wrk, the sandbox and gunicorn share the machine's cores. "
        f"The floor, warm-cache and seed's-approach cells take turns: {args.rounds} rounds of "
        f"{args.seconds / args.rounds:g} s each, the order rotating each round, because this "
        "machine's speed drifts (2x within minutes, seen here) and cells measured one after "
        "another could land in different phases of it.",
    ]
    failed = (
        sum(cell.not_ok for cell in cells)
        + sum(n for status, n in work.site_statuses.items() if status != 200)
        + sum(n for status, n in work.seed_statuses.items() if status != 200)
    )
    if failed:
        setup.insert(
            0,
            f"**This run is not valid: {failed} measured views were not HTTP 200** "
            "(rerun with `--keep-scratch` to keep the gunicorn logs).",
        )
    text = render(
        info=info,
        setup=setup,
        cells=cells,
        sandbox_alone=sandbox_alone,
        latency_ms=args.latency_ms,
        work=work,
        memories=memories,
        weights=weights,
        targets=targets,
        profiles=profiles,
    )
    args.output.write_text(text)
    print()
    print(text)
    missed = [t.name for t in targets if not t.met]
    if missed:
        print(f"Missed targets: {'; '.join(missed)} (see {args.output})")
    if failed:
        print(f"INVALID RUN: {failed} measured views were not HTTP 200 (see the tables).")
        return 1
    return 0
