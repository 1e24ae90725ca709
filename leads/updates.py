"""Changes made from the lead page: status, follow-up date, notes (issue 9).

Each change follows the same steps:

1. Read the lead fresh from PollyBot (one GET) and compare its `updatedAt` with
   the one the user's page showed. If they differ, nothing is sent: the caller
   gets `LeadChanged`, with the fields that changed when the site can tell.
2. Build the smallest Update Lead body (pollybot-api.md: top-level fields are
   replaced, `metadata` merged key by key, `null` clears). Nothing to change
   means no PUT.
3. One PUT, never retried (the client's rule: the request may have reached
   PollyBot). Its answer becomes the cached copy (no extra GET).
4. One `LeadChange` row: who, when, which fields, before and after.

Errors stay the closed set of `leads.pollybot`; a failed PUT arrives wrapped in
`UpdateFailed`, which also carries the lead as read just before, so the page
can come back with the user's input instead of an error page.

What no client of this API can prevent: a change made upstream in the instant
between the GET and the PUT. PollyBot offers no conditional update (no ETag or
If-Match), so the window is kept to one round trip.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from django.utils import timezone

from leads import freshness, pollybot, services
from leads.cache import row_copy, row_copy_keys, rows_changed
from leads.lead import KNOWN_STATUSES, Lead, humanize_key
from leads.models import LeadChange

logger = logging.getLogger(__name__)

# The permission that opens the forms (leads.models.LeadChange.Meta.permissions).
CHANGE_LEAD_PERMISSION = "leads.change_lead"
# The stamp in front of an appended note, in the site's time zone:
# "[2026-11-26 14:05, Sam Seller] text".
NOTE_STAMP_FORMAT = "%Y-%m-%d %H:%M"
# A blank line between notes: the page shows notes with their line breaks.
NOTE_SEPARATOR = "\n\n"
# A value in the conflict notice or "Changed here" is shown up to this many
# characters: enough to recognise it, short enough for a phone screen.
MAX_SHOWN_VALUE_CHARS = 80
# "Changed here" lists this many of the latest changes of a lead.
RECENT_CHANGES_SHOWN = 20

# The dotted paths of the fields this module changes, and how they are labelled.
STATUS_PATH = "status"
FOLLOW_UP_PATH = "metadata.follow_up_date"
NOTES_PATH = "metadata.notes"
_LABELS = {STATUS_PATH: "Status", FOLLOW_UP_PATH: "Follow-up date", NOTES_PATH: "Notes"}
# Never compared: it changes with every update, and the conflict is already known.
_VERSION_FIELD = "updatedAt"

# A stale copy means the fresh read failed: the change cannot be checked, so it
# is not sent, and the user hears why (the error the stale copy stood in for).
_STALE_ERRORS: dict[str, Callable[[], pollybot.PollyBotError]] = {
    "rate_limited": lambda: pollybot.RateLimited(
        "Could not check the lead: the workspace's PollyBot budget is spent"
    ),
    "unexpected": lambda: pollybot.UpstreamProtocolError(
        "Could not check the lead: PollyBot gave an unexpected answer"
    ),
}

# --- results and errors --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FieldChange:
    """One field that differs between two versions of a lead, as the page shows it."""

    path: str
    label: str
    before: str
    after: str


class LeadChanged(Exception):
    """The lead changed upstream since the user's page was loaded: nothing was sent.

    `fetched` is the newer version (shown on the page); `changes` lists what
    differs from the version the user saw, or is None when the site no longer
    has that version and cannot tell.
    """

    def __init__(
        self, *, fetched: services.FetchedLead, changes: tuple[FieldChange, ...] | None
    ) -> None:
        super().__init__("The lead changed in PollyBot since the page was loaded")
        self.fetched = fetched
        self.changes = changes

    @property
    def version(self) -> str:
        return version_of(self.fetched.lead)


class UpdateFailed(Exception):
    """The PUT failed (`error`, one of the closed set); `fetched` is the lead as read before it."""

    def __init__(self, error: pollybot.PollyBotError, *, fetched: services.FetchedLead) -> None:
        super().__init__(str(error))
        self.error = error
        self.fetched = fetched


class CannotApply(Exception):
    """The change cannot be made safely to this lead as it is (a message for the page)."""

    def __init__(self, message: str, *, fetched: services.FetchedLead) -> None:
        super().__init__(message)
        self.message = message
        self.fetched = fetched


@dataclasses.dataclass(frozen=True)
class Updated:
    """The outcome of a change: the lead as it is now, and whether a PUT was sent."""

    lead: Lead
    sent: bool
    change: LeadChange | None = None


# --- small pure helpers ----------------------------------------------------------------


def version_of(lead: Lead) -> str:
    """The `updatedAt` text a form carries: the version of the lead its page showed."""
    return lead.updated_at.raw if lead.updated_at is not None else ""


def _version(data: Mapping[str, Any]) -> str:
    return version_of(Lead.from_api(data, today=timezone.localdate()))


def _get(data: Mapping[str, Any], path: str) -> Any:
    head, _, rest = path.partition(".")
    value = data.get(head)
    if not rest:
        return value
    return value.get(rest) if isinstance(value, Mapping) else None


def _label(path: str) -> str:
    return _LABELS.get(path) or humanize_key(path.rpartition(".")[2])


def _shown(path: str, value: Any) -> str:
    """A value as a short line of text: status labels, "—" for nothing."""
    if value is None or value == "":
        return "—"
    if path == STATUS_PATH and isinstance(value, str) and value in KNOWN_STATUSES:
        return KNOWN_STATUSES[value]
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    if len(text) > MAX_SHOWN_VALUE_CHARS:
        text = text[: MAX_SHOWN_VALUE_CHARS - 1] + "…"
    return text


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    """What differs between two versions of a lead: top-level fields and metadata keys."""
    paths: list[str] = []
    for name in dict.fromkeys([*before, *after]):
        if name == _VERSION_FIELD:
            continue
        old, new = before.get(name), after.get(name)
        if name == "metadata" and isinstance(old, Mapping) and isinstance(new, Mapping):
            paths.extend(
                f"metadata.{key}"
                for key in dict.fromkeys([*old, *new])
                if old.get(key) != new.get(key)
            )
        elif old != new:
            paths.append(str(name))
    return tuple(
        FieldChange(
            path=path,
            label=_label(path),
            before=_shown(path, _get(before, path)),
            after=_shown(path, _get(after, path)),
        )
        for path in paths
    )


def author_name(user: Any) -> str:
    """The name on an appended note and an audit row: the full name, else the username."""
    full = user.get_full_name().strip() if hasattr(user, "get_full_name") else ""
    return full or str(user.get_username())


def note_entry(*, text: str, author: str, when: datetime.datetime) -> str:
    """ "[2026-11-26 14:05, Sam Seller] text", stamped in the site's time zone."""
    stamp = timezone.localtime(when).strftime(NOTE_STAMP_FORMAT)
    return f"[{stamp}, {author}] {text.strip()}"


def appended_notes(existing: str, entry: str) -> str:
    """The notes with one entry added at the end; nothing already there is changed."""
    return f"{existing}{NOTE_SEPARATOR}{entry}" if existing.strip() else entry


# --- the one path every change takes ---------------------------------------------------

# Builds the PUT body from the lead as just read; an empty dict means nothing to change.
_Build = Callable[[Mapping[str, Any], services.FetchedLead], dict[str, Any]]


def _paths_of(changes: Mapping[str, Any]) -> list[str]:
    paths: list[str] = []
    for name, value in changes.items():
        if name == "metadata" and isinstance(value, Mapping):
            paths.extend(f"metadata.{key}" for key in value)
        else:
            paths.append(name)
    return paths


def _apply(
    *,
    user: Any,
    lead_id: str,
    action: LeadChange.Action,
    seen_version: str,
    build: _Build,
) -> Updated:
    pollybot.validate_lead_id(lead_id)  # no call at all for a malformed ID
    connection = services.get_connection()
    client = services.get_client(connection)
    # Same cache entry as the lead page (services._lead_resource): the PUT's
    # answer then serves the page the user is redirected to.
    resource = services._lead_resource(lead_id)
    # The copy the user's page was most likely built from: kept to tell which
    # fields changed if the fresh read shows a newer version.
    earlier = freshness.cached_copy(connection, resource)
    fetched = freshness.fetch(connection, client, resource, refresh=True)
    if fetched.stale_reason is not None:
        make_error = _STALE_ERRORS.get(fetched.stale_reason)
        raise (
            make_error()
            if make_error
            else pollybot.UpstreamUnavailable("Could not check the lead: PollyBot is not answering")
        )
    current = fetched.data
    page = services.FetchedLead(
        lead=Lead.from_api(current, today=timezone.localdate()), fetched_at=fetched.fetched_at
    )
    if version_of(page.lead) != seen_version:
        changes = None
        if earlier is not None and _version(earlier[0]) == seen_version:
            changes = changed_fields(earlier[0], current)
        logger.info("%s: changed upstream since the page was loaded; not sent", lead_id)
        raise LeadChanged(fetched=page, changes=changes)

    body = build(current, page)
    if not body:
        return Updated(lead=page.lead, sent=False)
    try:
        data = client.update_lead(lead_id, changes=body)
    except pollybot.PollyBotError as error:
        # Never retried here either: a PUT that timed out may have been applied.
        logger.warning("%s: update failed: %r", lead_id, error)
        raise UpdateFailed(error, fetched=page) from error
    finally:
        freshness.record_budget(connection, client)
    freshness.store(connection, resource, data)

    paths = _paths_of(body)
    change = LeadChange.objects.create(
        user=user if getattr(user, "is_authenticated", False) else None,
        user_name=author_name(user)[:150],
        lead_id=lead_id,
        action=action,
        fields=paths,
        before={path: _get(current, path) for path in paths},
        after={path: _get(data, path) for path in paths},
    )
    logger.info("%s: %s changed by user %s", lead_id, ", ".join(paths), change.user_id)
    return Updated(lead=Lead.from_api(data, today=timezone.localdate()), sent=True, change=change)


# --- the three actions -------------------------------------------------------------------


def set_status(
    *,
    user: Any,
    lead_id: str,
    status: str,
    follow_up_date: datetime.date | None = None,
    seen_version: str,
) -> Updated:
    """Change the status (a partial update of `status` only).

    With `follow_up` and a date, `status` and `metadata.follow_up_date` go in
    the same PUT, so the lead never shows Follow-up without its date.
    """
    if status not in KNOWN_STATUSES:
        raise ValueError(f"not a lead status: {status!r}")

    def build(current: Mapping[str, Any], page: services.FetchedLead) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if current.get("status") != status:
            body["status"] = status
        if status == "follow_up" and follow_up_date is not None:
            iso = follow_up_date.isoformat()
            if _get(current, FOLLOW_UP_PATH) != iso:
                body["metadata"] = {"follow_up_date": iso}
        return body

    return _apply(
        user=user,
        lead_id=lead_id,
        action=LeadChange.Action.STATUS,
        seen_version=seen_version,
        build=build,
    )


def set_follow_up(
    *, user: Any, lead_id: str, follow_up_date: datetime.date | None, seen_version: str
) -> Updated:
    """Set, change or clear (None: `null`, which the API reads as "clear") the follow-up date."""
    value = follow_up_date.isoformat() if follow_up_date is not None else None

    def build(current: Mapping[str, Any], page: services.FetchedLead) -> dict[str, Any]:
        if _get(current, FOLLOW_UP_PATH) == value:
            return {}
        return {"metadata": {"follow_up_date": value}}

    return _apply(
        user=user,
        lead_id=lead_id,
        action=LeadChange.Action.FOLLOW_UP,
        seen_version=seen_version,
        build=build,
    )


def add_note(
    *,
    user: Any,
    lead_id: str,
    text: str,
    seen_version: str,
    now: datetime.datetime | None = None,
) -> Updated:
    """Append a dated, signed note to `metadata.notes`.

    The API replaces `notes` as a whole string, so the site sends the notes it
    has just read with the entry added. It never sends notes older than the
    ones in PollyBot: a lead changed since the page was loaded is a
    `LeadChanged`, and the user adds the note to the newer notes or not at all.
    """
    if not text.strip():
        raise ValueError("an empty note")
    entry = note_entry(text=text, author=author_name(user), when=now or timezone.now())

    def build(current: Mapping[str, Any], page: services.FetchedLead) -> dict[str, Any]:
        existing = _get(current, NOTES_PATH)
        if existing is not None and not isinstance(existing, str):
            # Appending would turn structured notes into text: that is an overwrite.
            raise CannotApply(
                "This lead's notes in PollyBot are not plain text, so the site will not "
                "change them. Nothing was saved.",
                fetched=page,
            )
        return {"metadata": {"notes": appended_notes(existing or "", entry)}}

    return _apply(
        user=user,
        lead_id=lead_id,
        action=LeadChange.Action.NOTE,
        seen_version=seen_version,
        build=build,
    )


# --- "Changed here" ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ChangeLine:
    """One line of "Changed here": when, who, and each field before and after."""

    changed_at: datetime.datetime
    author: str
    fields: tuple[FieldChange, ...]
    note: str  # the note added, for a note


def _added_note(before: Any, after: Any) -> str:
    old = before if isinstance(before, str) else ""
    new = after if isinstance(after, str) else ""
    return new[len(old) :].strip() if new.startswith(old) else new.strip()


# "Changed here" is on every view of a lead, and changes are rare: the rows are
# kept in the shared cache per lead (leads.cache.row_copy); writing a change
# makes that lead's copy out of date (leads.signals).
CHANGES_CACHE_TTL = 3600
_CHANGE_COLUMNS = ("changed_at", "user_name", "fields", "before", "after")


def _changes_generation_key(lead_id: str) -> str:
    return f"leadsite:changes:{lead_id}:generation"


def _change_rows(lead_id: str) -> list[tuple[Any, ...]]:
    """The lead's latest changes as plain values (what the cache keeps), newest first."""
    rows = LeadChange.objects.filter(lead_id=lead_id).values_list(*_CHANGE_COLUMNS)
    return list(rows[:RECENT_CHANGES_SHOWN])


def changes_changed(lead_id: str) -> None:
    rows_changed(_changes_generation_key(lead_id), CHANGES_CACHE_TTL)


def _changes_entry_key(lead_id: str) -> str:
    return f"leadsite:changes:{lead_id}"


def recent_changes_keys(*, lead_id: str) -> list[str]:
    """The cache keys `recent_changes` reads (leads.cache.read_ahead)."""
    return row_copy_keys(_changes_generation_key(lead_id), _changes_entry_key(lead_id))


def recent_changes(*, lead_id: str) -> list[ChangeLine]:
    """The latest changes made to this lead from the site, newest first."""
    rows = row_copy(
        generation_key=_changes_generation_key(lead_id),
        entry_key=_changes_entry_key(lead_id),
        ttl=CHANGES_CACHE_TTL,
        load=lambda: _change_rows(lead_id),
    )
    return [_change_line(*row) for row in rows]


def _change_line(
    changed_at: datetime.datetime, user_name: str, paths: Any, before: Any, after: Any
) -> ChangeLine:
    paths = [path for path in paths if isinstance(path, str)] if isinstance(paths, list) else []
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    note = ""
    fields: list[FieldChange] = []
    for path in paths:
        if path == NOTES_PATH:
            note = _added_note(before.get(path), after.get(path))
            continue
        fields.append(
            FieldChange(
                path=path,
                label=_label(path),
                before=_shown(path, before.get(path)),
                after=_shown(path, after.get(path)),
            )
        )
    return ChangeLine(changed_at=changed_at, author=user_name, fields=tuple(fields), note=note)
