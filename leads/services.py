"""What views call: fetch a lead from PollyBot and shape it for display.

Views never touch `requests`, the cache or the API's settings; they call these
functions and handle the closed set of errors in `leads.pollybot`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from django.conf import settings
from django.utils import timezone

from leads import encryption, freshness, pollybot
from leads.lead import Lead
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


# --- Leads, through the cache (leads.freshness) ---------------------------------


class FetchedLead(NamedTuple):
    """A lead ready for the page, when it was read from PollyBot, and why it is stale.

    stale_reason is None for a fresh copy; see leads.freshness.Fetched.
    """

    lead: Lead
    fetched_at: datetime
    stale_reason: str | None = None

    @property
    def stale(self) -> bool:
        return self.stale_reason is not None

    @property
    def fetched_today(self) -> bool:
        return freshness.fetched_today(self.fetched_at)


def _lead_resource(lead_id: str) -> freshness.Resource:
    return freshness.Resource(
        name=lead_id,
        fetch=lambda client: client.get_lead(lead_id),
        fresh_for=int(settings.POLLYBOT_CACHE_TTL),
    )


def get_lead(*, lead_id: str, refresh: bool = False) -> FetchedLead:
    """One lead for the page: fresh from the cache, else fetched once for everyone.

    The ID is checked before anything else (the seed's first best practice).
    """
    pollybot.validate_lead_id(lead_id)
    connection = get_connection()
    fetched = freshness.fetch(
        connection, get_client(connection), _lead_resource(lead_id), refresh=refresh
    )
    return FetchedLead(
        lead=Lead.from_api(fetched.data, today=timezone.localdate()),
        fetched_at=fetched.fetched_at,
        stale_reason=fetched.stale_reason,
    )


def allow_refresh(*, lead_id: str) -> bool:
    """Whether a Refresh of this lead may call PollyBot now (one per lead every few seconds)."""
    pollybot.validate_lead_id(lead_id)
    return freshness.allow_refresh(get_connection(), lead_id)


def describe_budget() -> str:
    """The workspace's rate budget in one sentence, for staff (the workspace admin page)."""
    try:
        connection = get_connection()
    except pollybot.NotConfigured:
        return "Not known: the workspace is not configured."
    parts: list[str] = []
    budget = freshness.get_budget(connection)
    if budget is None or budget.remaining is None:
        parts.append("Not known yet: no PollyBot answer in the last hour.")
    else:
        limit = f" of {budget.limit:,}" if budget.limit is not None else ""
        parts.append(f"{budget.remaining:,}{limit} calls left")
        if budget.reset is not None:
            reset = timezone.localtime(datetime.fromtimestamp(budget.reset, tz=UTC))
            parts[-1] += f"; the oldest counted call expires at {reset:%H:%M:%S %Z}"
        parts[-1] += "."
    until = freshness.quiet_until(connection)
    if until is not None:
        resume = timezone.localtime(datetime.fromtimestamp(until, tz=UTC))
        parts.append(f"Rate-limited: no calls until {resume:%H:%M:%S %Z}.")
    return " ".join(parts)


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
