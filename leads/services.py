"""What views call: fetch a lead from PollyBot and shape it for display.

Views never touch `requests`, the cache or the API's settings; they call these
functions and handle the closed set of errors in `leads.pollybot`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from leads import encryption, pollybot
from leads.lead import Lead
from leads.log import cache_outcome_var
from leads.models import Workspace

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Connection:
    """Where the workspace's API lives, the key that opens it, and its cache namespace.

    `namespace` changes whenever the base URL or the key changes, so cached
    data fetched with an old connection is never served under a new one.
    """

    base_url: str
    api_key: str
    namespace: str

    def __repr__(self) -> str:  # the key never reaches a log line
        return f"Connection(base_url={self.base_url!r}, namespace={self.namespace!r})"


@dataclass(frozen=True)
class ConnectionCheck:
    """The outcome of "Test connection" (admin) and `manage.py pollybot check`."""

    ok: bool
    message: str
    rate_limit: pollybot.RateLimitInfo | None = None


def get_connection() -> Connection:
    """The active connection: the workspace saved in the admin, else the environment.

    Read on every call (one primary-key query), so a key saved in the admin
    takes effect on the very next request in every process, with no restart.
    """
    workspace = Workspace.objects.active()
    if workspace is not None:
        try:
            api_key = workspace.api_key
        except encryption.Undecryptable as error:
            raise pollybot.NotConfigured(
                "The saved workspace key can no longer be decrypted: SECRET_KEY changed "
                "without the old one in SECRET_KEY_FALLBACKS. Enter the key again in the "
                "workspace admin page."
            ) from error
        return Connection(
            base_url=workspace.base_url,
            api_key=api_key,
            namespace=f"workspace-v{workspace.version}",
        )
    base_url = settings.POLLYBOT_BASE_URL.strip()
    api_key = settings.POLLYBOT_API_KEY.strip()
    if not base_url or not api_key:
        raise pollybot.NotConfigured(
            "No workspace is saved in the admin, and POLLYBOT_BASE_URL or "
            "POLLYBOT_API_KEY is not set."
        )
    # A digest, not the key: namespaces appear in cache keys.
    digest = hashlib.sha256(f"{base_url}\n{api_key}".encode()).hexdigest()[:16]
    return Connection(base_url=base_url, api_key=api_key, namespace=f"env-{digest}")


def _client_options() -> dict[str, float]:
    """Timeouts and retries from settings; the client's named constants by default."""
    return {
        "connect_timeout": getattr(settings, "POLLYBOT_CONNECT_TIMEOUT", pollybot.CONNECT_TIMEOUT),
        "read_timeout": getattr(settings, "POLLYBOT_READ_TIMEOUT", pollybot.READ_TIMEOUT),
        "deadline": getattr(settings, "POLLYBOT_CALL_DEADLINE", pollybot.CALL_DEADLINE),
        "max_retries": getattr(settings, "POLLYBOT_MAX_RETRIES", pollybot.MAX_RETRIES),
        "backoff_factor": getattr(settings, "POLLYBOT_BACKOFF_FACTOR", pollybot.BACKOFF_FACTOR),
    }


# One client per connection, so every request of a process shares one pooled
# requests.Session (keep-alive to PollyBot) instead of a handshake per page.
_clients: dict[tuple[Connection, tuple[tuple[str, float], ...]], pollybot.Client] = {}
_clients_lock = threading.Lock()


def get_client(connection: Connection) -> pollybot.Client:
    """The pooled client for a connection; NotConfigured when it is unusable."""
    options = _client_options()
    cache_key = (connection, tuple(sorted(options.items())))
    with _clients_lock:
        client = _clients.get(cache_key)
        if client is None:
            client = pollybot.Client(
                base_url=connection.base_url,
                api_key=connection.api_key,
                connect_timeout=options["connect_timeout"],
                read_timeout=options["read_timeout"],
                deadline=options["deadline"],
                max_retries=int(options["max_retries"]),
                backoff_factor=options["backoff_factor"],
            )
            # A changed connection replaces the old client. It is not closed here:
            # another thread may still be using it; its sockets go with it.
            _clients.clear()
            _clients[cache_key] = client
        return client


# --- Caching: one upstream call per lead per freshness window -------------------
# Every entry lives in Django's cache (local memory on a laptop, Redis shared by
# every instance in production) under the connection's namespace, so a new key
# or base URL never serves what the old one fetched.

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


class FetchedLead(NamedTuple):
    """A lead ready for the page, when it was read from PollyBot, and whether it is stale."""

    lead: Lead
    fetched_at: datetime
    # Why a copy older than the freshness window is shown, or None when it is fresh:
    # "unavailable", "rate_limited", "unexpected" (stale-if-error, RFC 5861) or
    # "saving_budget" (few calls left this hour).
    stale_reason: str | None = None

    @property
    def stale(self) -> bool:
        return self.stale_reason is not None

    @property
    def fetched_today(self) -> bool:
        """Whether the copy is from today in the site's time zone (else the page names the day)."""
        return timezone.localtime(self.fetched_at).date() == timezone.localdate()


def _key(connection: Connection, kind: str, name: str = "") -> str:
    return f"leadsite:{connection.namespace}:{kind}:{name}"


def _cache_ttl() -> int:
    return int(settings.POLLYBOT_CACHE_TTL)


def _stale_ttl() -> int:
    return max(int(settings.POLLYBOT_STALE_TTL), _cache_ttl())


def _now() -> float:
    return time.time()


def _record_budget(connection: Connection, client: pollybot.Client) -> None:
    """Share the X-RateLimit-* values of the last answer with every instance."""
    budget = client.last_rate_limit
    if budget is None:
        return
    ttl = pollybot.RETRY_AFTER_MAX
    if budget.reset is not None:
        ttl = int(min(max(budget.reset - _now(), 1), pollybot.RETRY_AFTER_MAX))
    cache.set(_key(connection, "budget"), budget, ttl)


def get_budget(connection: Connection) -> pollybot.RateLimitInfo | None:
    """The workspace's rate budget as last seen by any instance, if still current."""
    budget = cache.get(_key(connection, "budget"))
    return budget if isinstance(budget, pollybot.RateLimitInfo) else None


def describe_budget() -> str:
    """The workspace's rate budget in one sentence, for staff (the workspace admin page)."""
    try:
        connection = get_connection()
    except pollybot.NotConfigured:
        return "Not known: the workspace is not configured."
    parts: list[str] = []
    budget = get_budget(connection)
    if budget is None or budget.remaining is None:
        parts.append("Not known yet: no PollyBot answer in the last hour.")
    else:
        limit = f" of {budget.limit:,}" if budget.limit is not None else ""
        parts.append(f"{budget.remaining:,}{limit} calls left")
        if budget.reset is not None:
            reset = timezone.localtime(datetime.fromtimestamp(budget.reset, tz=UTC))
            parts[-1] += f"; the oldest counted call expires at {reset:%H:%M:%S %Z}"
        parts[-1] += "."
    until = quiet_until(connection)
    if until is not None:
        resume = timezone.localtime(datetime.fromtimestamp(until, tz=UTC))
        parts.append(f"Rate-limited: no calls until {resume:%H:%M:%S %Z}.")
    return " ".join(parts)


def _budget_is_low(connection: Connection) -> bool:
    budget = get_budget(connection)
    if budget is None or budget.remaining is None or not budget.limit:
        return False
    return budget.remaining < budget.limit * LOW_BUDGET_FRACTION


def quiet_until(connection: Connection) -> float | None:
    """After a 429, the Unix time before which no call is made (None when calls are allowed)."""
    until = cache.get(_key(connection, "quiet"))
    return until if isinstance(until, float) and until > _now() else None


def _enter_quiet_period(connection: Connection, error: pollybot.RateLimited) -> None:
    wait = error.retry_after or DEFAULT_QUIET_SECONDS
    cache.set(_key(connection, "quiet"), _now() + wait, wait)


def _cached_copy(connection: Connection, lead_id: str) -> tuple[dict[str, Any], float] | None:
    entry = cache.get(_key(connection, "lead", lead_id))
    if isinstance(entry, tuple) and len(entry) == 2:
        return entry
    return None


def _shown(data: dict[str, Any], fetched: float, stale_reason: str | None = None) -> FetchedLead:
    return FetchedLead(
        lead=Lead.from_api(data, today=timezone.localdate()),
        fetched_at=datetime.fromtimestamp(fetched, tz=UTC),
        stale_reason=stale_reason,
    )


_STALE_REASONS: dict[type[pollybot.PollyBotError], str] = {
    pollybot.UpstreamUnavailable: "unavailable",
    pollybot.RateLimited: "rate_limited",
    pollybot.UpstreamProtocolError: "unexpected",
}


def _stale_or_raise(
    connection: Connection,
    error: pollybot.PollyBotError,
    copy: tuple[dict[str, Any], float] | None,
) -> FetchedLead:
    """RFC 5861 stale-if-error: a stale copy beats the error page, for these errors only.

    A refused key may mean revoked access, and a lead not found may have been
    deleted: those never show an old copy. Once PollyBot has refused the key,
    no old copy is shown at all until a call succeeds again.
    """
    reason = next((r for cls, r in _STALE_REASONS.items() if isinstance(error, cls)), None)
    if copy is None or reason is None or cache.get(_key(connection, "refused")):
        raise error
    logger.warning("showing a stale copy: %r", error)
    return _shown(*copy, stale_reason=reason)


def _fetch_and_store(connection: Connection, lead_id: str) -> tuple[dict[str, Any], float]:
    """One upstream call; its outcome is cached for everyone (success, 404, or failure)."""
    client = get_client(connection)
    try:
        data = client.get_lead(lead_id)
    except pollybot.LeadNotFound as error:
        cache.set(_key(connection, "notfound", lead_id), error, NOT_FOUND_TTL)
        cache.delete(_key(connection, "lead", lead_id))  # deleted upstream: no stale copy
        raise
    except pollybot.PollyBotError as error:
        if isinstance(error, pollybot.RateLimited):
            _enter_quiet_period(connection, error)
        if isinstance(error, pollybot.AuthenticationFailed):
            cache.set(_key(connection, "refused"), True, _stale_ttl())
        cache.set(_key(connection, "failed", lead_id), error, FAILURE_TTL)
        raise
    finally:
        _record_budget(connection, client)
    entry = (data, _now())
    cache.set(_key(connection, "lead", lead_id), entry, _stale_ttl())
    cache.delete_many([_key(connection, "failed", lead_id), _key(connection, "refused")])
    return entry


def _lock_ttl() -> int:
    deadline = float(getattr(settings, "POLLYBOT_CALL_DEADLINE", pollybot.CALL_DEADLINE))
    return int(deadline + LOCK_MARGIN) + 1


def _newer_copy(
    connection: Connection, lead_id: str, *, seen: float | None
) -> tuple[dict[str, Any], float] | None:
    """A copy stored after the one this request saw (any copy, if it saw none)."""
    copy = _cached_copy(connection, lead_id)
    return copy if copy is not None and (seen is None or copy[1] > seen) else None


def _lead_the_flight(
    connection: Connection, lead_id: str, *, seen: float | None, lock_key: str, token: str
) -> tuple[dict[str, Any], float]:
    """Holding the lock: call PollyBot unless the previous leader's result just landed."""
    try:
        # Check again under the lock: a leader may have stored its result and
        # released the lock between this request's last look and its `add`.
        landed = _newer_copy(connection, lead_id, seen=seen)
        if landed is not None:
            return landed
        not_found = cache.get(_key(connection, "notfound", lead_id))
        if isinstance(not_found, pollybot.LeadNotFound):
            raise not_found
        return _fetch_and_store(connection, lead_id)
    finally:
        # Only the owner releases; the lock outlives the call, so it is still ours.
        if cache.get(lock_key) == token:
            cache.delete(lock_key)


def _single_flight(
    connection: Connection, lead_id: str, *, seen: float | None
) -> tuple[dict[str, Any], float]:
    """Fetch once for everyone: the first caller calls PollyBot, the others wait for it.

    The lock is a cache key taken with `add` (atomic in Redis and local memory)
    holding a random token; only its owner deletes it. Waiters poll for a copy
    newer than the one they saw (`seen`), the leader's shared failure, or its
    404; when the lock is gone with none of those (the leader died), one of
    them leads instead; past the lock's lifetime each calls for itself.
    """
    lock_key = _key(connection, "lock", lead_id)
    token = secrets.token_hex(16)
    if cache.add(lock_key, token, _lock_ttl()):
        return _lead_the_flight(connection, lead_id, seen=seen, lock_key=lock_key, token=token)
    give_up = time.monotonic() + _lock_ttl()
    while time.monotonic() < give_up:
        time.sleep(SINGLE_FLIGHT_POLL)
        landed = _newer_copy(connection, lead_id, seen=seen)
        if landed is not None:
            return landed
        not_found = cache.get(_key(connection, "notfound", lead_id))
        if isinstance(not_found, pollybot.LeadNotFound):
            raise not_found
        if cache.get(lock_key) is not None:
            continue
        failed = cache.get(_key(connection, "failed", lead_id))
        if isinstance(failed, pollybot.PollyBotError):
            raise failed
        if cache.add(lock_key, token, _lock_ttl()):
            return _lead_the_flight(connection, lead_id, seen=seen, lock_key=lock_key, token=token)
    logger.warning("single-flight wait for %s timed out: calling PollyBot directly", lead_id)
    return _fetch_and_store(connection, lead_id)


def get_lead(*, lead_id: str, refresh: bool = False) -> FetchedLead:
    """One lead for the page: fresh from the cache, else fetched once for everyone.

    The ID is checked before anything else (the seed's first best practice).
    `refresh` skips the freshness window (the page's Refresh control, which is
    itself limited by `allow_refresh`), never the rate-limit rules.
    """
    pollybot.validate_lead_id(lead_id)
    connection = get_connection()
    copy = _cached_copy(connection, lead_id)
    if not refresh:
        not_found = cache.get(_key(connection, "notfound", lead_id))
        if isinstance(not_found, pollybot.LeadNotFound):
            logger.info("lead %s: remembered not-found", lead_id)
            raise not_found
        if copy is not None and _now() - copy[1] < _cache_ttl():
            logger.info("lead %s: cache hit", lead_id)
            return _shown(*copy)
        if copy is not None and _budget_is_low(connection):
            logger.info("lead %s: stale copy, saving the rate budget", lead_id)
            return _shown(*copy, stale_reason="saving_budget")
        failed = cache.get(_key(connection, "failed", lead_id))
        if isinstance(failed, pollybot.PollyBotError):
            # PollyBot failed for this lead seconds ago: do not ask again at once.
            logger.info("lead %s: recent failure, no call", lead_id)
            return _stale_or_raise(connection, failed, copy)
    until = quiet_until(connection)
    if until is not None:
        quiet = pollybot.RateLimited(
            "Waiting out PollyBot's rate limit", retry_after=max(int(until - _now()), 1)
        )
        logger.info("lead %s: rate-limit quiet period, no call", lead_id)
        return _stale_or_raise(connection, quiet, copy)
    # Why the cache could not answer: the client's log line for the call says it.
    outcome = "refresh" if refresh else ("expired" if copy else "miss")
    token = cache_outcome_var.set(outcome)
    try:
        fresh = _single_flight(connection, lead_id, seen=copy[1] if copy else None)
    except pollybot.PollyBotError as error:
        return _stale_or_raise(connection, error, copy)
    finally:
        cache_outcome_var.reset(token)
    logger.info("lead %s: fetched from PollyBot", lead_id)
    return _shown(*fresh)


def allow_refresh(*, lead_id: str) -> bool:
    """Whether a Refresh of this lead may call PollyBot now (one per REFRESH_INTERVAL)."""
    pollybot.validate_lead_id(lead_id)
    return bool(cache.add(_key(get_connection(), "refresh", lead_id), 1, REFRESH_INTERVAL))


# A lead ID anywhere in pasted text: a bare ID, a link of this site, a CRM line.
_LEAD_ID_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_-])lead_[A-Za-z0-9]+(?![A-Za-z0-9_-])")


def find_lead_id(text: str) -> str | None:
    """The lead ID a lookup box entry points at, or None when it holds none.

    A well-formed ID found inside longer text (a pasted URL, say) counts; it is
    still validated (length) before any call is made.
    """
    candidate = text.strip()
    if pollybot.LEAD_ID_PATTERN.fullmatch(candidate):
        return candidate
    match = _LEAD_ID_IN_TEXT.search(candidate)
    return match.group(0) if match else None


def check_connection() -> ConnectionCheck:
    """One real call (List Leads, limit=1) and a clear sentence for its outcome."""
    try:
        connection = get_connection()
        client = get_client(connection)
        client.list_leads(limit=1)
    except pollybot.NotConfigured as error:
        return ConnectionCheck(ok=False, message=f"Not configured. {error.message}")
    except pollybot.AuthenticationFailed:
        return ConnectionCheck(
            ok=False,
            message="Key refused: PollyBot did not accept the workspace's API key.",
        )
    except pollybot.UpstreamUnavailable as error:
        why = "it did not answer in time" if error.timeout else "it could not be reached"
        if error.status:
            why = f"it answered HTTP {error.status}"
        return ConnectionCheck(ok=False, message=f"Not reachable: {why} ({connection.base_url}).")
    except pollybot.RateLimited as error:
        wait = f" Try again in {error.retry_after} s." if error.retry_after else ""
        return ConnectionCheck(
            ok=False,
            message=f"Rate limited: the workspace's hourly PollyBot budget is spent.{wait}",
        )
    except pollybot.PollyBotError:
        return ConnectionCheck(
            ok=False,
            message=(
                f"Unexpected answer from {connection.base_url}: check that it is the "
                "PollyBot API's base URL (without /api/v1)."
            ),
        )
    budget = client.last_rate_limit
    message = "Connected to PollyBot."
    if budget is not None and budget.remaining is not None:
        limit = f" of {budget.limit:,}" if budget.limit is not None else ""
        message += f" {budget.remaining:,}{limit} calls left this hour."
    return ConnectionCheck(ok=True, message=message, rate_limit=budget)
