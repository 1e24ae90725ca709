"""The replayed workload of item 2: page views over leads with a Zipf-like popularity."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

# The workload: this many page views over this many leads in one hour.
VIEWS = 1500
LEADS = 300
SIMULATED_SECONDS = 3600
# "Zipf-like": the lead of popularity rank k is viewed in proportion to 1/k**s;
# 1.1 is a common fit for page popularity (a few hot leads, a long cold tail).
ZIPF_EXPONENT = 1.1
# Fixed so every run replays the very same views (results comparable across runs).
SEED = 20240116
# Views in flight at once during a replay: well above the views due at once.
REPLAY_CONCURRENCY = 32
REQUEST_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class View:
    at: float  # simulated seconds since the start of the hour
    lead_id: str


def schedule(lead_ids: list[str], *, seed: int = SEED) -> list[View]:
    """VIEWS views over `lead_ids` (popularity rank = list order), uniformly over the hour."""
    rng = random.Random(seed)  # noqa: S311 (a reproducible replay, not a secret)
    weights = [1 / rank**ZIPF_EXPONENT for rank in range(1, len(lead_ids) + 1)]
    leads = rng.choices(lead_ids, weights=weights, k=VIEWS)
    moments = sorted(rng.uniform(0, SIMULATED_SECONDS) for _ in range(VIEWS))
    return [View(at=at, lead_id=lead) for at, lead in zip(moments, leads, strict=True)]


def calls_by_freshness_rule(views: list[View], *, ttl: float) -> int:
    """Upstream calls if every view of a lead older than `ttl` (simulated s) fetches it.

    The rule of leads/services.py with no failures and no concurrency; used to
    check the real replay and for what-if figures, never as the measurement.
    """
    fetched: dict[str, float] = {}
    calls = 0
    for view in views:
        last = fetched.get(view.lead_id)
        if last is None or view.at - last >= ttl:
            calls += 1
            fetched[view.lead_id] = view.at
    return calls


def replay(
    views: list[View],
    *,
    url_for: Callable[[str], str],
    cookies: dict[str, str],
    time_scale: float | None,
) -> Counter[int]:
    """Send every view over HTTP; HTTP statuses counted.

    With `time_scale` (real seconds per simulated second) each view is sent at
    its scaled moment; with None they are sent back to back.
    """
    local = threading.local()
    statuses: Counter[int] = Counter()
    statuses_lock = threading.Lock()

    def view_page(view: View) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.cookies.update(cookies)
        answer = session.get(
            url_for(view.lead_id), allow_redirects=False, timeout=REQUEST_TIMEOUT_SECONDS
        )
        with statuses_lock:
            statuses[answer.status_code] += 1

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=REPLAY_CONCURRENCY) as pool:
        futures = []
        for view in views:
            if time_scale is not None:
                delay = start + view.at * time_scale - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            futures.append(pool.submit(view_page, view))
        for future in futures:
            future.result()
    return statuses
