"""Lead: a typed, display-ready view of the PollyBot API's lead dict.

Pure functions and frozen dataclasses, no I/O. `Lead.from_api` is the only way in:
it takes the API's `data` dict (the seed's "complete lead object") and returns
values the templates can show without further checks.

Upstream data is untrusted (pollybot-api.md: "metadata is free-form JSON ... any
other key, of any JSON type, may appear"). So every field may be missing, null,
of the wrong type or hostile text; nothing here raises on a dict input, and
nothing here escapes HTML either: that is the templates' autoescaping's job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import enum
import functools
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "KNOWN_STATUSES",
    "FollowUp",
    "FollowUpKind",
    "Lead",
    "MetadataField",
    "Moment",
    "Status",
    "humanize_key",
]

# The status values of pollybot-api.md ("Status values"), in the API's order.
KNOWN_STATUSES: dict[str, str] = {
    "new": "New",
    "contacted": "Contacted",
    "qualified": "Qualified",
    "converted": "Converted",
    "lost": "Lost",
    "follow_up": "Follow-up",
}

# Label shown when the status is missing or blank.
UNKNOWN_STATUS_LABEL = "Unknown"
# CSS class for any status outside KNOWN_STATUSES: never built from the raw value,
# so upstream text cannot choose a class name.
OTHER_STATUS_CSS_CLASS = "status-other"

# An invalid follow-up date is quoted back in its message; a hostile upstream can
# send megabytes there, and a sentence on a phone screen needs no more than this.
MAX_QUOTED_FOLLOW_UP_CHARS = 60

# RFC 5321 section 4.5.3.1.3: a forward-path is at most 256 octets including the
# angle brackets, so an address longer than 254 characters cannot be delivered.
MAX_EMAIL_CHARS = 254
# ITU-T E.164 numbers have at most 15 digits; a few more leave room for a national
# trunk prefix written in front. Longer runs of digits are not a phone number.
MAX_PHONE_DIGITS = 20
# Fewer digits than this cannot be dialled usefully (the shortest emergency and
# service numbers have three).
MIN_PHONE_DIGITS = 3

# Metadata keys this module turns into typed fields (pollybot-api.md lists them as
# the documented keys); every `utm_` key is consumed too. Anything else is kept
# in `other_metadata`.
UTM_PREFIX = "utm_"
KNOWN_METADATA_KEYS = frozenset(
    {"company", "job_title", "interests", "notes", "last_interaction", "follow_up_date"}
)

# Words shown in a fixed spelling by humanize_key (acronyms and brand names that
# appear in CRM keys). Keys are lower case.
_KEY_WORD_SPELLINGS: dict[str, str] = {
    "api": "API",
    "crm": "CRM",
    "id": "ID",
    "ids": "IDs",
    "ip": "IP",
    "linkedin": "LinkedIn",
    "url": "URL",
    "urls": "URLs",
    "utm": "UTM",
}
EMPTY_KEY_LABEL = "(empty key)"

# camelCase and PascalCase boundaries: "firstContact" -> "first Contact",
# "HTTPServer" -> "HTTP Server", "userID" -> "user ID".
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_KEY_SEPARATORS = re.compile(r"[\s_.\-]+")

# One address: something@domain.tld, with none of the characters that would turn a
# mailto: link into several recipients or add headers (RFC 6068: "?" starts header
# fields such as cc/bcc/body, "," separates addresses, "%" could encode either,
# "&" "#" ";" and the quoting/bracketing characters have no place in a plain address).
_EMAIL_FORBIDDEN = frozenset(':"?<>,;%&#\\()[]/')
_EMAIL_DOMAIN = re.compile(r"^[^.]+(\.[^.]+)+$")

# A phone number as people write it: digits, spaces, dashes, dots and parentheses,
# with at most one "+" at the very start.
_PHONE_PUNCTUATION = frozenset(" -.()")
_ASCII_DIGITS = frozenset("0123456789")

# "YYYY-MM-DD", optionally followed by a time part ("T..." or " ...").
_ISO_DATE_PREFIX = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ].+)?$")


def _text(value: Any) -> str:
    """A str field's display text: "" for missing/None, str() for scalars, compact JSON
    for containers; never raises."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, Mapping | list | tuple):
        return _compact_json(value)
    try:
        return str(value)
    except Exception:  # a hostile __str__ (not from JSON, but never crash)
        return ""


def _compact_json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError, RecursionError):
        # Circular or absurdly deep structures cannot come from a JSON body; if one
        # does reach us, show nothing rather than fail the page.
        return ""


def humanize_key(key: str) -> str:
    """A readable label for a metadata key.

    "utm_source" -> "UTM source", "job_title" -> "Job title", "firstContact" ->
    "First contact", "linkedin_url" -> "LinkedIn URL", "" -> "(empty key)".
    """
    text = key if isinstance(key, str) else _text(key)
    if not text.strip():
        return EMPTY_KEY_LABEL
    words = [w for w in _KEY_SEPARATORS.split(_CAMEL_BOUNDARY.sub(" ", text)) if w]
    if not words:
        # Only separators ("__", "-"): show the key as it is rather than nothing.
        return text.strip()
    shown: list[str] = []
    for word in words:
        lower = word.lower()
        if lower in _KEY_WORD_SPELLINGS:
            shown.append(_KEY_WORD_SPELLINGS[lower])
        elif len(word) > 1 and word.isupper():
            shown.append(word)  # an acronym we do not list ("HTTP", "SKU"): keep it
        else:
            shown.append(lower)
    first = shown[0]
    shown[0] = first[:1].upper() + first[1:]
    return " ".join(shown)


@dataclasses.dataclass(frozen=True)
class Status:
    value: str
    label: str
    known: bool
    css_class: str

    @classmethod
    def from_value(cls, raw: Any) -> Status:
        value = _text(raw)
        # The API's values are lower-case snake case; tolerate stray case and spaces
        # from hand-edited data rather than showing "Contacted " as unknown.
        normalized = value.strip().lower()
        if normalized in KNOWN_STATUSES:
            return cls(
                value=value,
                label=KNOWN_STATUSES[normalized],
                known=True,
                css_class="status-" + normalized.replace("_", "-"),
            )
        label = value.strip() or UNKNOWN_STATUS_LABEL
        return cls(value=value, label=label, known=False, css_class=OTHER_STATUS_CSS_CLASS)


@dataclasses.dataclass(frozen=True)
class Moment:
    """A timestamp from the API: the text as received and, when it parses, an aware
    datetime in UTC."""

    raw: str
    value: datetime.datetime | None

    @property
    def is_valid(self) -> bool:
        return self.value is not None

    @classmethod
    def parse(cls, raw: Any) -> Moment | None:
        """None when the field is missing, null or blank; otherwise a Moment whose
        `value` is None when the text is not an ISO 8601 datetime."""
        if raw is None:
            return None
        text = _text(raw)
        if not text.strip():
            return None
        if not isinstance(raw, str):
            # A number here could be Unix seconds or milliseconds; guessing would show
            # a confident wrong date, so it is shown as given instead.
            return cls(raw=text, value=None)
        try:
            # Python 3.11 reads the API's "2024-01-16T14:30:00.000Z" directly.
            parsed = datetime.datetime.fromisoformat(text.strip())
        except ValueError:
            return cls(raw=text, value=None)
        if parsed.tzinfo is None:
            # The API writes UTC ("Z"); a string without an offset is read the same way.
            parsed = parsed.replace(tzinfo=datetime.UTC)
        # "0001-01-01T00:00:00+01:00" has no UTC form: it keeps its own offset.
        with contextlib.suppress(OverflowError):
            parsed = parsed.astimezone(datetime.UTC)
        return cls(raw=text, value=parsed)


class FollowUpKind(enum.StrEnum):
    NONE = "none"
    OVERDUE = "overdue"
    TODAY = "today"
    UPCOMING = "upcoming"
    INVALID = "invalid"


@dataclasses.dataclass(frozen=True)
class FollowUp:
    """The state of `metadata.follow_up_date` relative to the site's local `today`.

    The follow-up date is a calendar date (pollybot-api.md: "follow_up_date (ISO
    date)"), compared with the local calendar date; it is never read as UTC
    midnight, which would make a date "overdue" a day early west of Greenwich.
    A full ISO datetime is accepted too, and its date part is taken as written
    ("2024-01-20T23:00:00-05:00" -> 20 January): whoever wrote it meant that
    day, and converting it to another zone would move the follow-up to another day.
    """

    kind: FollowUpKind
    date: datetime.date | None
    raw: str
    days: int

    @property
    def text(self) -> str:
        if self.kind is FollowUpKind.OVERDUE:
            return f"Overdue by {self.days} day{'' if self.days == 1 else 's'}"
        if self.kind is FollowUpKind.TODAY:
            return "Due today"
        if self.kind is FollowUpKind.UPCOMING:
            return "Tomorrow" if self.days == 1 else f"In {self.days} days"
        if self.kind is FollowUpKind.INVALID:
            quoted = self.raw
            if len(quoted) > MAX_QUOTED_FOLLOW_UP_CHARS:
                quoted = quoted[: MAX_QUOTED_FOLLOW_UP_CHARS - 1] + "…"
            return f'Follow-up date "{quoted}" is not a date'
        return "No follow-up set"

    @property
    def css_class(self) -> str:
        return f"followup-{self.kind.value}"

    @classmethod
    def from_value(cls, raw: Any, *, today: datetime.date) -> FollowUp:
        text = _text(raw)
        if not text.strip():
            return cls(kind=FollowUpKind.NONE, date=None, raw=text, days=0)
        invalid = cls(kind=FollowUpKind.INVALID, date=None, raw=text, days=0)
        if not isinstance(raw, str):
            return invalid
        date = _parse_calendar_date(text.strip())
        if date is None:
            return invalid
        delta = (date - today).days
        if delta < 0:
            kind = FollowUpKind.OVERDUE
        elif delta == 0:
            kind = FollowUpKind.TODAY
        else:
            kind = FollowUpKind.UPCOMING
        return cls(kind=kind, date=date, raw=text, days=abs(delta))


def _parse_calendar_date(text: str) -> datetime.date | None:
    """ "YYYY-MM-DD", or an ISO datetime whose date part is taken as written."""
    match = _ISO_DATE_PREFIX.match(text)
    if match is None:
        return None
    try:
        date = datetime.date.fromisoformat(match.group(1))
        if len(text) > len(match.group(1)):
            # The time part must parse too: "2024-01-20Tlater" is not a date.
            datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return date


@dataclasses.dataclass(frozen=True)
class MetadataField:
    key: str
    label: str
    value: Any

    @classmethod
    def of(cls, key: str, value: Any) -> MetadataField:
        return cls(key=key, label=humanize_key(key), value=value)


@dataclasses.dataclass(frozen=True)
class Lead:
    id: str
    name: str
    email: str
    phone: str
    source: str
    status: Status
    company: str
    job_title: str
    utm: tuple[MetadataField, ...]
    interests: tuple[str, ...]
    notes: str
    last_interaction: Moment | None
    follow_up: FollowUp
    created_at: Moment | None
    updated_at: Moment | None
    workspace_id: str
    other_metadata: tuple[MetadataField, ...]

    @functools.cached_property
    def fingerprint(self) -> str:
        """A digest of everything the lead holds (its dataclass repr, which names every field).

        Two leads with the same fingerprint render the same: the lead page caches
        its lead cards under it (templates/leads/detail.html).
        """
        return hashlib.blake2b(repr(self).encode(), digest_size=16).hexdigest()

    @property
    def display_name(self) -> str:
        for candidate in (self.name, self.email, self.id):
            if candidate.strip():
                return candidate.strip()
        return "Unnamed lead"

    @property
    def email_href(self) -> str | None:
        """ "mailto:" + the address, only when the field is exactly one plain address
        (so upstream text cannot add recipients, headers or another scheme)."""
        address = self.email.strip()
        if not address or len(address) > MAX_EMAIL_CHARS or address.count("@") != 1:
            return None
        if any(ch.isspace() or not ch.isprintable() or ch in _EMAIL_FORBIDDEN for ch in address):
            return None
        local, _, domain = address.partition("@")
        if not local or not _EMAIL_DOMAIN.match(domain):
            return None
        return "mailto:" + address

    @property
    def phone_href(self) -> str | None:
        """ "tel:" + the digits (and one leading "+") when the field is a phone number
        as people write it; None when it holds anything else ("call me", "ext. 4")."""
        number = self.phone.strip()
        plus = number.startswith("+")
        body = number[1:] if plus else number
        if any(ch not in _ASCII_DIGITS and ch not in _PHONE_PUNCTUATION for ch in body):
            return None
        digits = "".join(ch for ch in body if ch in _ASCII_DIGITS)
        if not MIN_PHONE_DIGITS <= len(digits) <= MAX_PHONE_DIGITS:
            return None
        return "tel:" + ("+" if plus else "") + digits

    @classmethod
    def from_api(cls, data: Mapping[str, Any], *, today: datetime.date) -> Lead:
        """Build a Lead from the API's lead dict (the envelope's `data`).

        `today` is the site's local calendar date (e.g. `timezone.localdate()`),
        passed in so that follow-up states are testable and zone-correct.
        """
        if not isinstance(data, Mapping):
            data = {}
        metadata = data.get("metadata")
        if not isinstance(metadata, Mapping):
            # A non-object metadata (a string, a list, null) carries no fields we can
            # label; it is treated as empty rather than shown half-broken.
            metadata = {}

        utm: list[MetadataField] = []
        other: list[MetadataField] = []
        for raw_key, value in metadata.items():
            key = raw_key if isinstance(raw_key, str) else _text(raw_key)
            if key.startswith(UTM_PREFIX):
                utm.append(MetadataField.of(key, value))
            elif key not in KNOWN_METADATA_KEYS:
                other.append(MetadataField.of(key, value))

        return cls(
            id=_text(data.get("id")),
            name=_text(data.get("name")),
            email=_text(data.get("email")),
            phone=_text(data.get("phone")),
            source=_text(data.get("source")),
            status=Status.from_value(data.get("status")),
            company=_text(metadata.get("company")),
            job_title=_text(metadata.get("job_title")),
            utm=tuple(utm),
            interests=_interests(metadata.get("interests")),
            notes=_text(metadata.get("notes")),
            last_interaction=Moment.parse(metadata.get("last_interaction")),
            follow_up=FollowUp.from_value(metadata.get("follow_up_date"), today=today),
            created_at=Moment.parse(data.get("createdAt")),
            updated_at=Moment.parse(data.get("updatedAt")),
            workspace_id=_text(data.get("workspaceId")),
            other_metadata=tuple(other),
        )


def _interests(raw: Any) -> tuple[str, ...]:
    """The documented shape is a list of strings; a lone value becomes a one-item
    tuple, other items are shown as text, and null/blank items are dropped."""
    items = raw if isinstance(raw, list | tuple) else [raw]
    texts = (_text(item) for item in items)
    return tuple(text for text in texts if text.strip())
