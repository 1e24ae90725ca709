"""What views call: fetch a lead from PollyBot and shape it for display.

Views never touch `requests`, the cache or the API's settings; they call these
functions and handle the closed set of errors in `leads.pollybot`.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from leads import pollybot
from leads.lead import Lead


@dataclass(frozen=True)
class Connection:
    """Where the workspace's API lives and the key that opens it."""

    base_url: str
    api_key: str

    def __repr__(self) -> str:  # the key never reaches a log line
        return f"Connection(base_url={self.base_url!r}, api_key=<hidden>)"


@dataclass(frozen=True)
class FetchedLead:
    """A lead ready for the page, and when it was read from PollyBot."""

    lead: Lead
    fetched_at: datetime


def get_connection() -> Connection:
    """The active workspace connection, from the environment's settings."""
    return Connection(
        base_url=settings.POLLYBOT_BASE_URL.strip(),
        api_key=settings.POLLYBOT_API_KEY.strip(),
    )


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


def get_client() -> pollybot.Client:
    """The pooled client for the active connection; NotConfigured when incomplete."""
    connection = get_connection()
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
    data = get_client().get_lead(lead_id)
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
