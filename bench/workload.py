"""The replayed workload of item 2: page views over leads with a Zipf-like popularity."""

from __future__ import annotations

import copy
import datetime
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests

# The share of a lead's unchanged time its copy is trusted for. leads.freshness
# reads Django's settings only inside functions, so this import needs none.
from leads.freshness import HEURISTIC_FRACTION, Resource
from leads.lead import Moment

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


def freshness_window(
    *,
    fetched_at: float,
    updated_at: float | None,
    min_ttl: float,
    max_ttl: float,
    fraction: float = HEURISTIC_FRACTION,
) -> float:
    """Seconds a copy fetched at `fetched_at` stays fresh: the product's own rule,
    leads.freshness.Resource.fresh_for_copy, as leads/services.py configures it.

    `fraction` of the time the lead had gone unchanged (`fetched_at - updated_at`),
    within [min_ttl, max(max_ttl, min_ttl)]; `min_ttl` when `updated_at` is unknown
    (None) or after the fetch; 0 throughout when `min_ttl` is 0. Any clock will do,
    as long as both moments are on it (here: simulated seconds since the hour began).
    """
    resource = Resource(
        name="bench",
        fetch=_never_fetched,
        fresh_for=min_ttl,
        last_modified=lambda data: updated_at,
        max_fresh_for=max_ttl,
        heuristic_fraction=fraction,
    )
    return resource.fresh_for_copy(({}, fetched_at))


def _never_fetched(client: object) -> dict[str, Any]:
    raise AssertionError("the rule only computes windows: it fetches nothing")


@dataclass(frozen=True)
class Fetch:
    """One upstream call the rule makes: when, of which lead, and how long its copy is fresh."""

    at: float  # simulated seconds since the start of the hour
    lead_id: str
    window: float  # simulated seconds


def fetches_by_freshness_rule(
    views: list[View],
    *,
    updated_at: Mapping[str, float | None],
    min_ttl: float,
    max_ttl: float,
    fraction: float = HEURISTIC_FRACTION,
) -> list[Fetch]:
    """The upstream calls the freshness rule makes for `views` (in time order), in order.

    `updated_at` maps a lead ID to its updatedAt in simulated seconds since the
    start of the hour: a lead last changed an hour before the hour began is at
    -3600. A lead missing from it (or None: no usable updatedAt) gets `min_ttl`.
    A view fetches its lead when it has no copy yet or the copy is at least its
    window old; each new copy's window is computed at its own fetch time.

    The rule of leads/freshness.py (Resource.fresh_for_copy, as leads/services.py
    configures it for a lead) with no failures and no concurrency: a check on the
    replay and for what-if figures, never the measurement.
    """
    copies: dict[str, Fetch] = {}
    fetches: list[Fetch] = []
    for view in views:
        held = copies.get(view.lead_id)
        if held is not None and view.at - held.at < held.window:
            continue  # fresh: served from the cache
        fetch = Fetch(
            at=view.at,
            lead_id=view.lead_id,
            window=freshness_window(
                fetched_at=view.at,
                updated_at=updated_at.get(view.lead_id),
                min_ttl=min_ttl,
                max_ttl=max_ttl,
                fraction=fraction,
            ),
        )
        copies[view.lead_id] = fetch
        fetches.append(fetch)
    return fetches


def calls_by_freshness_rule(
    views: list[View],
    *,
    updated_at: Mapping[str, float | None],
    min_ttl: float,
    max_ttl: float,
    fraction: float = HEURISTIC_FRACTION,
) -> int:
    """Upstream calls of `views` under the freshness rule (see fetches_by_freshness_rule).

    The rule of leads/freshness.py with no failures and no concurrency: a check
    on the replay and for what-if figures, never the measurement.
    """
    return len(
        fetches_by_freshness_rule(
            views, updated_at=updated_at, min_ttl=min_ttl, max_ttl=max_ttl, fraction=fraction
        )
    )


def window_kind(window: float, *, min_ttl: float, max_ttl: float) -> str:
    """Where a window lies in the rule's range: "maximum", "minimum" or "between"."""
    if window >= max(max_ttl, min_ttl):
        return "maximum"
    if window <= min_ttl:
        return "minimum"
    return "between"


def parse_updated_at(lead: Mapping[str, Any]) -> datetime.datetime | None:
    """A lead's updatedAt as the site reads it (leads/services.py `_updated_at`).

    None when missing or not an ISO 8601 datetime: the site then gives the
    copy the minimum window.
    """
    moment = Moment.parse(lead.get("updatedAt"))
    return moment.value if moment is not None else None


def simulated_updated_at(leads: list[dict[str, Any]], *, start: float) -> dict[str, float | None]:
    """Each lead's updatedAt in simulated seconds since the hour began (at Unix time `start`).

    The data's own ages are the simulated ones: a lead changed a day before
    `start` is at -86400. None for a lead without a usable updatedAt.
    """
    found: dict[str, float | None] = {}
    for lead in leads:
        moment = parse_updated_at(lead)
        found[str(lead.get("id"))] = None if moment is None else moment.timestamp() - start
    return found


def _iso_timestamp(moment: datetime.datetime) -> str:
    # As sandbox/data.py writes updatedAt: "2024-01-15T10:30:00.000Z" (UTC, milliseconds, Z).
    moment = moment.astimezone(datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}Z"


def with_scaled_ages(
    leads: list[dict[str, Any]], *, start: float, scale: float
) -> list[dict[str, Any]]:
    """Copies of `leads` whose ages at Unix time `start` are their ages times `scale`.

    The replay's compressed clock for the data: the site trusts a copy for a
    tenth of the lead's real age, so a lead that had gone unchanged for A
    simulated seconds when the hour begins must be A x `scale` real seconds old
    when the replay begins (both at `start`); it is then (A + t) x `scale` real
    seconds old at the replay's moment for simulated second t, and every window
    the site computes is the simulated one times `scale`.
    updatedAt becomes `start - scale * (start - updatedAt)` (one in the future
    stays in the future); a lead without a usable updatedAt is copied as is.
    Pure: the given dicts are not changed.
    """
    scaled: list[dict[str, Any]] = []
    for lead in leads:
        lead = copy.deepcopy(lead)
        moment = parse_updated_at(lead)
        if moment is not None:
            age = start - moment.timestamp()
            when = datetime.datetime.fromtimestamp(start - age * scale, tz=datetime.UTC)
            lead["updatedAt"] = _iso_timestamp(when)
        scaled.append(lead)
    return scaled


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
