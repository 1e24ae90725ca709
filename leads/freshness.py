"""Careful use of the workspace's 1,000 calls an hour: one upstream call per
resource per freshness window, across every process.

Every entry lives in Django's cache (local memory on a laptop, Redis shared by
every instance in production) under the connection's namespace, so a new key
or base URL never serves what the old one fetched. `fetch` is the one entry
point: fresh copy from the cache, else one call for everyone (single-flight),
else a stale copy rather than an error page (RFC 5861 stale-if-error), within
the rate budget PollyBot reports.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from leads import pollybot
from leads.cache import get_many, read_ahead_is_old
from leads.log import cache_outcome_var

logger = logging.getLogger(__name__)

# A not-found answer is remembered this long: a bad deep link clicked by a whole
# team costs one call, and a lead created a moment later shows up soon after.
NOT_FOUND_TTL = 30
# At most one Refresh per lead in this many seconds, whoever clicks: a refresh
# storm cannot burn the workspace's hourly budget.
REFRESH_INTERVAL = 10
# Below this share of the hour's calls left, cached copies are shown up to their
# stale age instead of being refreshed: the last calls are kept for leads no
# one has seen yet.
LOW_BUDGET_FRACTION = 0.05
# A waiting request polls for the leader's result this often: short next to a
# PollyBot round trip, long enough not to hammer the cache.
SINGLE_FLIGHT_POLL = 0.05
# The leader's lock outlives its call (the client's whole deadline, retries
# included) by this margin, so it never expires while the call is under way; if
# the leader dies, the lock frees itself this long after.
LOCK_MARGIN = 5.0
# A failed call is shared with the requests that waited on it for this long, so
# they show the same page instead of each trying again at once.
FAILURE_TTL = 5
# After a 429 without a usable Retry-After or X-RateLimit-Reset, stay quiet this long.
DEFAULT_QUIET_SECONDS = 60
# Heuristic freshness (Resource.fresh_for_copy): the share of the time data had
# gone unchanged for which a copy of it is trusted, as RFC 9111 suggests.
HEURISTIC_FRACTION = 0.1

# Why a copy older than its freshness window is shown.
_STALE_REASONS: dict[type[pollybot.PollyBotError], str] = {
    pollybot.UpstreamUnavailable: "unavailable",
    pollybot.RateLimited: "rate_limited",
    pollybot.UpstreamProtocolError: "unexpected",
}

Copy = tuple[dict[str, Any], float]  # (the API's data, Unix time it was fetched)


class Namespace(Protocol):
    """The connection a cache entry belongs to (leads.services.Connection)."""

    @property
    def namespace(self) -> str: ...


@dataclass(frozen=True)
class Resource:
    """One thing fetched from PollyBot: its cache name, how to fetch it, how long it is fresh.

    `name` is unique across kinds (lead IDs start with "lead_", list queries
    with "list-"), and names every key of the resource: copy, lock, failure, 404.

    A copy is fresh for `fresh_for` seconds. With `last_modified` (when the
    data says it last changed, as Unix time) and a longer `max_fresh_for`, the
    window follows the data instead (RFC 9111 section 4.2.2, the heuristic
    browsers apply to Last-Modified): `heuristic_fraction` (HEURISTIC_FRACTION)
    of the time the data had gone unchanged when it was fetched, within
    [fresh_for, max_fresh_for].
    Data changed minutes ago is asked for again after `fresh_for`; data no one
    has touched for days after `max_fresh_for`. A `fresh_for` of 0 turns the
    window off altogether.
    """

    name: str
    fetch: Callable[[pollybot.Client], dict[str, Any]]
    fresh_for: float
    last_modified: Callable[[dict[str, Any]], float | None] | None = None
    max_fresh_for: float = 0
    heuristic_fraction: float = HEURISTIC_FRACTION

    def fresh_for_copy(self, copy: Copy) -> float:
        """Seconds this copy stays fresh after it was fetched."""
        if self.fresh_for <= 0 or self.last_modified is None:
            return self.fresh_for
        data, fetched = copy
        modified = self.last_modified(data)
        if modified is None or modified > fetched:  # unknown, or a clock ahead of ours
            return self.fresh_for
        window = (fetched - modified) * self.heuristic_fraction
        return min(max(window, self.fresh_for), max(self.max_fresh_for, self.fresh_for))


class Fetched(NamedTuple):
    """The API's data, when it was fetched, and why it is stale (None when fresh).

    stale_reason: "unavailable", "rate_limited", "unexpected" (stale-if-error)
    or "saving_budget" (few calls left this hour).
    """

    data: dict[str, Any]
    fetched_at: datetime
    stale_reason: str | None = None


def key(connection: Namespace, kind: str, name: str = "") -> str:
    return f"leadsite:{connection.namespace}:{kind}:{name}"


def _stale_ttl() -> int:
    """How long a copy is kept: at least as long as it can be fresh."""
    return max(
        int(settings.POLLYBOT_STALE_TTL),
        int(settings.POLLYBOT_CACHE_TTL),
        int(settings.POLLYBOT_CACHE_MAX_TTL),
    )


def _now() -> float:
    return time.time()


# --- the rate budget -------------------------------------------------------------


def record_budget(connection: Namespace, client: pollybot.Client) -> None:
    """Share the X-RateLimit-* values of the last answer with every instance."""
    budget = client.last_rate_limit
    if budget is None:
        return
    ttl = pollybot.RETRY_AFTER_MAX
    if budget.reset is not None:
        ttl = int(min(max(budget.reset - _now(), 1), pollybot.RETRY_AFTER_MAX))
    cache.set(key(connection, "budget"), budget, ttl)


def get_budget(connection: Namespace) -> pollybot.RateLimitInfo | None:
    """The workspace's rate budget as last seen by any instance, if still current."""
    budget = cache.get(key(connection, "budget"))
    return budget if isinstance(budget, pollybot.RateLimitInfo) else None


def _budget_is_low(budget: object) -> bool:
    if not isinstance(budget, pollybot.RateLimitInfo):
        return False
    if budget.remaining is None or not budget.limit:
        return False
    return budget.remaining < budget.limit * LOW_BUDGET_FRACTION


def _quiet_until(until: object) -> float | None:
    return until if isinstance(until, float) and until > _now() else None


def quiet_until(connection: Namespace) -> float | None:
    """After a 429, the Unix time before which no call is made (None when calls are allowed)."""
    return _quiet_until(cache.get(key(connection, "quiet")))


def _enter_quiet_period(connection: Namespace, error: pollybot.RateLimited) -> None:
    wait = error.retry_after or DEFAULT_QUIET_SECONDS
    cache.set(key(connection, "quiet"), _now() + wait, wait)


def allow_refresh(connection: Namespace, name: str) -> bool:
    """Whether a Refresh of this resource may call PollyBot now (one per REFRESH_INTERVAL)."""
    return bool(cache.add(key(connection, "refresh", name), 1, REFRESH_INTERVAL))


# --- copies, failures and the stale rule -------------------------------------------


def _as_copy(entry: object) -> Copy | None:
    if isinstance(entry, tuple) and len(entry) == 2:
        return entry
    return None


def cached_copy(connection: Namespace, res: Resource) -> Copy | None:
    """The resource's copy in the cache, fresh or not (None when there is none)."""
    return _as_copy(cache.get(key(connection, "copy", res.name)))


def _fetched(copy: Copy, stale_reason: str | None = None) -> Fetched:
    data, fetched = copy
    return Fetched(data, datetime.fromtimestamp(fetched, tz=UTC), stale_reason)


def _stale_or_raise(
    connection: Namespace, error: pollybot.PollyBotError, copy: Copy | None
) -> Fetched:
    """RFC 5861 stale-if-error: a stale copy beats the error page, for these errors only.

    A refused key may mean revoked access, and a lead not found may have been
    deleted: those never show an old copy. Once PollyBot has refused the key,
    no old copy is shown at all until a call succeeds again.
    """
    reason = next((r for cls, r in _STALE_REASONS.items() if isinstance(error, cls)), None)
    if copy is None or reason is None or cache.get(key(connection, "refused")):
        raise error
    logger.warning("showing a stale copy: %r", error)
    return _fetched(copy, stale_reason=reason)


def _fetch_and_store(connection: Namespace, client: pollybot.Client, res: Resource) -> Copy:
    """One upstream call; its outcome is cached for everyone (success, 404, or failure)."""
    try:
        data = res.fetch(client)
    except pollybot.LeadNotFound as error:
        cache.set(key(connection, "notfound", res.name), error, NOT_FOUND_TTL)
        cache.delete(key(connection, "copy", res.name))  # deleted upstream: no stale copy
        raise
    except pollybot.PollyBotError as error:
        if isinstance(error, pollybot.RateLimited):
            _enter_quiet_period(connection, error)
        if isinstance(error, pollybot.AuthenticationFailed):
            cache.set(key(connection, "refused"), True, _stale_ttl())
        cache.set(key(connection, "failed", res.name), error, FAILURE_TTL)
        raise
    finally:
        record_budget(connection, client)
    entry = (data, _now())
    cache.set(key(connection, "copy", res.name), entry, _stale_ttl())
    cache.delete_many(
        [
            key(connection, "failed", res.name),
            key(connection, "notfound", res.name),  # out of date: the lead exists
            key(connection, "refused"),
        ]
    )
    return entry


def store(connection: Namespace, res: Resource, data: dict[str, Any]) -> None:
    """Keep data PollyBot just returned (an update's answer) as the fresh copy."""
    cache.set(key(connection, "copy", res.name), (data, _now()), _stale_ttl())


# --- single-flight -----------------------------------------------------------------


def _lock_ttl() -> int:
    deadline = float(getattr(settings, "POLLYBOT_CALL_DEADLINE", pollybot.CALL_DEADLINE))
    return int(deadline + LOCK_MARGIN) + 1


def _landed(connection: Namespace, res: Resource, *, seen: float | None) -> Copy | None:
    """A copy stored after the one this request saw (any copy, if it saw none).

    Raises the leader's LeadNotFound if that is what landed instead; one cache
    round trip for both.
    """
    copy_key = key(connection, "copy", res.name)
    not_found_key = key(connection, "notfound", res.name)
    found = cache.get_many([copy_key, not_found_key])
    copy = _as_copy(found.get(copy_key))
    if copy is not None and (seen is None or copy[1] > seen):
        return copy
    _raise_not_found(found.get(not_found_key))
    return None


def _raise_not_found(not_found: object) -> None:
    if isinstance(not_found, pollybot.LeadNotFound):
        raise not_found


def _lead_the_flight(
    connection: Namespace,
    client: pollybot.Client,
    res: Resource,
    *,
    seen: float | None,
    lock_key: str,
    token: str,
) -> Copy:
    """Holding the lock: call PollyBot unless the previous leader's result just landed."""
    try:
        # Check again under the lock: a leader may have stored its result and
        # released the lock between this request's last look and its `add`.
        landed = _landed(connection, res, seen=seen)
        if landed is not None:
            return landed
        return _fetch_and_store(connection, client, res)
    finally:
        _release(lock_key, token)


def _release(lock_key: str, token: str) -> None:
    """Only the owner releases the lock: atomically on Redis (leads.cache).

    Elsewhere (local memory: one process) it is a read, then a delete; the lock
    outlives the call, so it is still this request's when the call ends.
    """
    delete_if_equal = getattr(cache, "delete_if_equal", None)
    if delete_if_equal is not None:
        delete_if_equal(lock_key, token)
    elif cache.get(lock_key) == token:
        cache.delete(lock_key)


def _single_flight(
    connection: Namespace, client: pollybot.Client, res: Resource, *, seen: float | None
) -> Copy:
    """Fetch once for everyone: the first caller calls PollyBot, the others wait for it.

    The lock is a cache key taken with `add` (atomic in Redis and local memory)
    holding a random token; only its owner deletes it. Waiters poll for a copy
    newer than the one they saw (`seen`), the leader's shared failure, or its
    404; when the lock is gone with none of those (the leader died), one of
    them leads instead; past the lock's lifetime each calls for itself.
    """
    lock_key = key(connection, "lock", res.name)
    token = secrets.token_hex(16)

    def lead() -> Copy:
        return _lead_the_flight(connection, client, res, seen=seen, lock_key=lock_key, token=token)

    if cache.add(lock_key, token, _lock_ttl()):
        return lead()
    give_up = time.monotonic() + _lock_ttl()
    while time.monotonic() < give_up:
        time.sleep(SINGLE_FLIGHT_POLL)
        landed = _landed(connection, res, seen=seen)
        if landed is not None:
            return landed
        if cache.get(lock_key) is not None:
            continue
        failed = cache.get(key(connection, "failed", res.name))
        if isinstance(failed, pollybot.PollyBotError):
            raise failed
        if cache.add(lock_key, token, _lock_ttl()):
            return lead()
    logger.warning("single-flight wait for %s timed out: calling PollyBot directly", res.name)
    return _fetch_and_store(connection, client, res)


# --- the one entry point -----------------------------------------------------------


def _fetch_keys(connection: Namespace, name: str) -> dict[str, str]:
    return {
        "copy": key(connection, "copy", name),
        "notfound": key(connection, "notfound", name),
        "failed": key(connection, "failed", name),
        "budget": key(connection, "budget"),
        "quiet": key(connection, "quiet"),
    }


def fetch_keys(connection: Namespace, name: str) -> list[str]:
    """The cache keys `fetch` reads first, for a view's `leads.cache.read_ahead`."""
    return list(_fetch_keys(connection, name).values())


def fetch(
    connection: Namespace, client: pollybot.Client, res: Resource, *, refresh: bool = False
) -> Fetched:
    """The resource's data: fresh from the cache, else fetched once for everyone.

    `refresh` skips the freshness window (a Refresh control, itself limited by
    `allow_refresh`), never the rate-limit rules.
    """
    # Everything this decision reads, in one cache round trip (or none, when a
    # view read them ahead with fetch_keys).
    keys = _fetch_keys(connection, res.name)
    found = get_many(list(keys.values()))
    seen = {kind: found.get(name) for kind, name in keys.items()}
    copy = _as_copy(seen["copy"])
    if not refresh:
        _raise_not_found(seen["notfound"])
        if copy is not None and _now() - copy[1] < res.fresh_for_copy(copy):
            # The common case, on every warm view: a debug line, not a log line per view.
            logger.debug("%s: cache hit", res.name)
            return _fetched(copy)
        if copy is not None and _budget_is_low(seen["budget"]):
            logger.info("%s: stale copy, saving the rate budget", res.name)
            return _fetched(copy, stale_reason="saving_budget")
        failed = seen["failed"]
        if isinstance(failed, pollybot.PollyBotError):
            # PollyBot failed for this resource seconds ago: do not ask again at once.
            logger.info("%s: recent failure, no call", res.name)
            return _stale_or_raise(connection, failed, copy)
    until = _quiet_until(seen["quiet"])
    if until is not None:
        quiet = pollybot.RateLimited(
            "Waiting out PollyBot's rate limit", retry_after=max(int(until - _now()), 1)
        )
        logger.info("%s: rate-limit quiet period, no call", res.name)
        return _stale_or_raise(connection, quiet, copy)
    # Why the cache could not answer: the client's log line for the call says it.
    token = cache_outcome_var.set("refresh" if refresh else ("expired" if copy else "miss"))
    try:
        fresh = _single_flight(connection, client, res, seen=copy[1] if copy else None)
    except pollybot.PollyBotError as error:
        return _stale_or_raise(connection, error, copy)
    finally:
        cache_outcome_var.reset(token)
        # The call (or the wait for another request's) took a while: what the
        # view read ahead before it may have changed since.
        read_ahead_is_old()
    logger.info("%s: fetched from PollyBot", res.name)
    return _fetched(fresh)


def fetched_today(fetched_at: datetime) -> bool:
    """Whether a copy is from today in the site's time zone (else pages name the day)."""
    return timezone.localtime(fetched_at).date() == timezone.localdate()
