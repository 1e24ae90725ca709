"""What views call: fetch a lead from PollyBot and shape it for display.

Views never touch `requests`, the cache or the API's settings; they call these
functions and handle the closed set of errors in `leads.pollybot`.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from leads import encryption, pollybot
from leads.lead import Lead
from leads.models import Workspace


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


@dataclass(frozen=True)
class FetchedLead:
    """A lead ready for the page, and when it was read from PollyBot."""

    lead: Lead
    fetched_at: datetime


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
            # A changed connection replaces the old client: close its sockets.
            for stale in _clients.values():
                stale.close()
            _clients.clear()
            _clients[cache_key] = client
        return client


def get_lead(*, lead_id: str) -> FetchedLead:
    """Fetch one lead; the ID is checked before any call (the seed's first best practice)."""
    pollybot.validate_lead_id(lead_id)
    data = get_client(get_connection()).get_lead(lead_id)
    return FetchedLead(
        lead=Lead.from_api(data, today=timezone.localdate()),
        fetched_at=timezone.now(),
    )


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
