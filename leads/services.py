"""What views call: fetch a lead from PollyBot and shape it for display.

Views never touch `requests`, the shared cache or the API's settings; they call
these functions and handle the closed set of errors in `leads.pollybot`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, NamedTuple
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from leads import auth, encryption, freshness, pollybot
from leads.cache import get_many, read_ahead, row_copy, row_copy_keys, rows_changed
from leads.lead import Lead, Moment
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


# The saved workspace, as read from the database, kept in the shared cache so a
# page view costs no database query for it (leads.cache.row_copy). Saving or
# deleting the workspace makes every copy out of date (leads.signals).
WORKSPACE_CACHE_KEY = "leadsite:workspace"
WORKSPACE_GENERATION_KEY = "leadsite:workspace:generation"
WORKSPACE_CACHE_TTL = 3600


@dataclass(frozen=True)
class SavedWorkspace:
    """What a connection needs from the Workspace row (the key still encrypted)."""

    base_url: str
    encrypted_api_key: str
    version: int

    def __repr__(self) -> str:  # not even the ciphertext in a log line
        return f"SavedWorkspace(base_url={self.base_url!r}, version={self.version})"

    @classmethod
    def of(cls, workspace: Workspace | None) -> SavedWorkspace | None:
        if workspace is None:
            return None
        return cls(workspace.base_url, workspace.encrypted_api_key, workspace.version)


def saved_workspace() -> SavedWorkspace | None:
    """The workspace saved in the admin (None when there is none)."""
    return row_copy(
        generation_key=WORKSPACE_GENERATION_KEY,
        entry_key=WORKSPACE_CACHE_KEY,
        ttl=WORKSPACE_CACHE_TTL,
        load=lambda: SavedWorkspace.of(Workspace.objects.active()),
    )


def workspace_changed() -> None:
    rows_changed(WORKSPACE_GENERATION_KEY, WORKSPACE_CACHE_TTL)


# The connection this process built last: the cache keys of a lead page's reads
# depend on its namespace, and a page reads them ahead (lead_page_reads) before it
# knows the connection. Only a guess: a read made ahead under another namespace
# is not used.
_last_connection: Connection | None = None


def get_connection() -> Connection:
    """The active connection: the workspace saved in the admin, else the environment.

    Read on every call (from the shared cache, whose copy a save makes out of
    date at once), so a key saved in the admin takes effect on the very next
    request in every process, with no restart.
    """
    global _last_connection
    connection = _last_connection = _connection()
    return connection


def _connection() -> Connection:
    workspace = saved_workspace()
    if workspace is not None:
        try:
            api_key = encryption.decrypt(workspace.encrypted_api_key)
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


def _updated_at(data: dict[str, Any]) -> float | None:
    """When PollyBot says the lead last changed (its updatedAt), as Unix time."""
    moment = Moment.parse(data.get("updatedAt"))
    return moment.value.timestamp() if moment is not None and moment.value else None


def _lead_resource(lead_id: str) -> freshness.Resource:
    # Fresh for POLLYBOT_CACHE_TTL after a recent change, for longer (up to
    # POLLYBOT_CACHE_MAX_TTL) the longer the lead had gone unchanged.
    return freshness.Resource(
        name=lead_id,
        fetch=lambda client: client.get_lead(lead_id),
        fresh_for=int(settings.POLLYBOT_CACHE_TTL),
        last_modified=_updated_at,
        max_fresh_for=int(settings.POLLYBOT_CACHE_MAX_TTL),
    )


@dataclass(frozen=True)
class _CopyOf:
    """One copy of a lead, named by where and when it was fetched; compared by name only.

    A copy never changes once stored (a new fetch or an update's answer is a
    new copy, fetched at a new moment), so its name stands for its data.
    """

    namespace: str
    lead_id: str
    fetched_at: datetime
    data: dict[str, Any] = field(compare=False, repr=False)


# Copies parsed lately, in this process: a copy viewed again on the same day is
# the same Lead (immutable), and parsing every field is much of a warm view's work.
@functools.lru_cache(maxsize=256)
def _parsed(copy: _CopyOf, today: date) -> Lead:
    return Lead.from_api(copy.data, today=today)


def get_lead(*, lead_id: str, refresh: bool = False) -> FetchedLead:
    """One lead for the page: fresh from the cache, else fetched once for everyone.

    The ID is checked before anything else (the seed's first best practice).
    """
    pollybot.validate_lead_id(lead_id)
    connection = get_connection()
    fetched = freshness.fetch(
        connection, get_client(connection), _lead_resource(lead_id), refresh=refresh
    )
    copy = _CopyOf(connection.namespace, lead_id, fetched.fetched_at, fetched.data)
    return FetchedLead(
        lead=_parsed(copy, timezone.localdate()),
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


# --- The list of leads (List Leads) -----------------------------------------------

# A list answer is fresh this long per distinct query: browsing back and forth
# costs nothing, and a lead created a minute ago appears soon enough.
LIST_FRESH_FOR = 60
DEFAULT_PAGE_SIZE = 20
# How many recently opened leads each user is offered again, and for how long
# (a month from the list's last change: a salesperson back from holiday still
# finds them; opening the lead already at the top changes nothing, writes nothing).
RECENT_LEADS_KEPT = 10
RECENT_LEADS_TTL = 30 * 24 * 60 * 60


@dataclass(frozen=True)
class LeadQuery:
    """One page of the list: search (name and email), filters, page and page size."""

    search: str = ""
    status: str = ""
    source: str = ""
    page: int = 1
    limit: int = DEFAULT_PAGE_SIZE

    def params(self, **changes: Any) -> dict[str, str]:
        """The query string of this page (only what differs from the defaults)."""
        values = {**self.__dict__, **changes}
        pairs = {
            "q": values["search"],
            "status": values["status"],
            "source": values["source"],
            "page": str(values["page"]) if values["page"] != 1 else "",
            "limit": str(values["limit"]) if values["limit"] != DEFAULT_PAGE_SIZE else "",
        }
        return {name: value for name, value in pairs.items() if value}

    def cache_name(self) -> str:
        fields = json.dumps(self.__dict__, sort_keys=True)
        return "list-" + hashlib.sha256(fields.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class LeadPage:
    """One page of leads as List Leads returned it (items carry essential fields only)."""

    query: LeadQuery
    leads: tuple[Lead, ...]
    total: int
    total_pages: int
    has_next: bool
    has_prev: bool
    fetched_at: datetime
    stale_reason: str | None = None

    @property
    def past_the_end(self) -> bool:
        return self.query.page > max(self.total_pages, 1)

    @property
    def stale(self) -> bool:
        return self.stale_reason is not None

    @property
    def fetched_today(self) -> bool:
        return freshness.fetched_today(self.fetched_at)


def _count(value: object, default: int = 0) -> int:
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default
    )


def _has_usable_id(item: dict[str, Any]) -> bool:
    """A list item without a well-formed ID cannot be linked to: it is left out, logged."""
    try:
        pollybot.validate_lead_id(item.get("id"))
    except pollybot.InvalidLeadId:
        logger.warning("List Leads returned an item without a usable ID: left out")
        return False
    return True


def list_leads(*, query: LeadQuery) -> LeadPage:
    """A page of the list, cached per distinct query under the same rules as a lead.

    List items are trimmed (pollybot-api.md), so they never fill a lead's cache.
    """
    connection = get_connection()
    resource = freshness.Resource(
        name=query.cache_name(),
        fetch=lambda client: client.list_leads(
            page=query.page,
            limit=query.limit,
            status=query.status or None,
            source=query.source or None,
            search=query.search or None,
        ),
        fresh_for=LIST_FRESH_FOR,
    )
    fetched = freshness.fetch(connection, get_client(connection), resource)
    pagination = fetched.data.get("pagination") or {}
    today = timezone.localdate()
    leads = tuple(
        Lead.from_api(item, today=today)
        for item in fetched.data.get("leads") or []
        if _has_usable_id(item)
    )
    total = _count(pagination.get("total"), len(leads))
    return LeadPage(
        query=query,
        leads=leads,
        total=total,
        total_pages=_count(pagination.get("totalPages"), 1 if total else 0),
        has_next=pagination.get("hasNext") is True,
        has_prev=pagination.get("hasPrev") is True,
        fetched_at=fetched.fetched_at,
        stale_reason=fetched.stale_reason,
    )


@dataclass(frozen=True)
class Neighbours:
    """Where Previous and Next lead, for a lead opened from a page of the list."""

    previous: tuple[str, dict[str, str]] | None  # (lead ID, list query of its page)
    next: tuple[str, dict[str, str]] | None
    list_params: dict[str, str]

    @property
    def list_querystring(self) -> str:
        return urlencode(self.list_params)


def neighbours(*, lead_id: str, query: LeadQuery) -> Neighbours | None:
    """The leads before and after this one in the list it was opened from.

    Reads the cached list pages (one call at most per page a minute); None when
    the lead is not on that page any more or the list cannot be read.
    """
    try:
        page = list_leads(query=query)
        ids = [lead.id for lead in page.leads]
        if lead_id not in ids:
            return None
        at = ids.index(lead_id)
        before = after = None
        if at > 0:
            before = (ids[at - 1], query.params())
        elif page.has_prev:
            earlier = replace(query, page=query.page - 1)
            previous_page = list_leads(query=earlier)
            if previous_page.leads:
                before = (previous_page.leads[-1].id, earlier.params())
        if at < len(ids) - 1:
            after = (ids[at + 1], query.params())
        elif page.has_next:
            later = replace(query, page=query.page + 1)
            next_page = list_leads(query=later)
            if next_page.leads:
                after = (next_page.leads[0].id, later.params())
    except pollybot.PollyBotError as error:
        logger.info("no previous/next for %s: %r", lead_id, error)
        return None
    return Neighbours(previous=before, next=after, list_params=query.params())


@dataclass(frozen=True)
class RecentLead:
    lead_id: str
    name: str


def _recent_key(user: Any) -> str:
    return f"leadsite:recent:{user.pk}"


def lead_page_reads(*, lead_id: str, user: Any) -> AbstractContextManager[None]:
    """A block in which a lead page's cache reads come from one round trip (read_ahead).

    The workspace, the lead's copy and what decides whether to fetch it, the
    user's permissions and recently viewed leads, the lead's "Changed here":
    one module each, one round trip each without this. The lead's keys are
    those of the connection this process used last: after a workspace change
    they are simply read again, under the new one. The ID is checked first
    (InvalidLeadId), before anything is read.
    """
    from leads import updates  # updates imports this module

    pollybot.validate_lead_id(lead_id)
    keys = row_copy_keys(WORKSPACE_GENERATION_KEY, WORKSPACE_CACHE_KEY)
    if _last_connection is not None:
        keys += freshness.fetch_keys(_last_connection, lead_id)
    if getattr(user, "is_authenticated", False):
        keys += auth.permission_keys(user)
        keys.append(_recent_key(user))
    keys += updates.recent_changes_keys(lead_id=lead_id)
    return read_ahead(keys)


def record_view(*, user: Any, lead: Lead) -> None:
    """Remember that this user opened this lead (the last RECENT_LEADS_KEPT are kept).

    Kept in the cache (shared by every instance), not the database: a page view
    costs no database write.
    """
    if not getattr(user, "is_authenticated", False):
        return
    items = recent_leads(user=user)
    this = RecentLead(lead_id=lead.id, name=lead.display_name[:200])
    if items and items[0] == this:
        return  # opened again: the list would not change
    earlier = [item for item in items if item.lead_id != lead.id]
    cache.set(_recent_key(user), [this, *earlier][:RECENT_LEADS_KEPT], RECENT_LEADS_TTL)


def recent_leads(*, user: Any) -> list[RecentLead]:
    if not getattr(user, "is_authenticated", False):
        return []
    key = _recent_key(user)
    items = get_many([key]).get(key)
    return (
        [item for item in items if isinstance(item, RecentLead)] if isinstance(items, list) else []
    )


# A lead ID anywhere in pasted text: a bare ID, a link of this site, a CRM line.
_LEAD_ID_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_-])lead_[A-Za-z0-9]+(?![A-Za-z0-9_-])")
# "lead_…", "lead-…", "LEAD_…" with no spaces: a (mistyped) ID, not a name.
_MEANT_AS_ID = re.compile(r"(?i)lead[_-]\S*\Z")


def looks_like_lead_id(text: str) -> bool:
    """Whether lookup text was meant as a lead ID (a malformed one gets the invalid-ID page)."""
    return _MEANT_AS_ID.match(text.strip()) is not None


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
