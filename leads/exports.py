"""Exports of one lead: a vCard for the address book, a follow-up for the calendar.

Pure functions, no I/O: a view turns their text into a download. The formats are
written by vobject (vCard 3.0, RFC 2426) and icalendar (RFC 5545), which escape
";", ",", "\\" and newlines in text values and fold long lines; nothing here builds
a content line by hand. What the libraries do not do is drop control characters
(they write them raw, and a bare CR or a vertical tab ends a line for some
readers), so every upstream text goes through `_clean` first.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
import urllib.parse

import icalendar
import vobject
from django.utils.text import slugify

from leads.lead import Lead

__all__ = [
    "CALENDAR_PRODID",
    "calendar_filename",
    "follow_up_calendar",
    "google_calendar_url",
    "lead_vcard",
    "outlook_calendar_url",
    "vcard_filename",
]

# RFC 5545 3.7.3: who wrote the calendar, in the usual "-//owner//product//lang" form.
CALENDAR_PRODID = "-//leadsite//EN"

GOOGLE_CALENDAR_URL = "https://calendar.google.com/calendar/render"
OUTLOOK_CALENDAR_URL = "https://outlook.live.com/calendar/0/deeplink/compose"

# A slug longer than this makes an unwieldy file name; 60 characters keep any real
# name whole and stay far below the 255-byte file name limit of common filesystems.
MAX_FILENAME_SLUG_CHARS = 60
# Used when neither the name nor the ID gives a slug (both blank or all symbols).
FALLBACK_FILENAME_SLUG = "lead"

# Each upstream value put into a calendar title or description is cut to this many
# characters: no real name, company, address or number is longer, and a hostile
# megabyte-long field would otherwise end up in a "add to calendar" link that
# browsers and the calendar services refuse (they cap URLs at a few kilobytes).
MAX_CALENDAR_FIELD_CHARS = 200

# Scripts whose names are written family name first with no reliable separator
# ("山田太郎", "김민준"): splitting them like "John Doe" would swap or cut the
# parts, so such a name is kept whole as the family name.
_FAMILY_FIRST_SCRIPT_PREFIXES = ("CJK ", "HIRAGANA", "KATAKANA", "HANGUL")

# Line separators that some readers (Python's own str.splitlines among them) treat
# as a line end: written as a plain newline, which the libraries escape.
_LINE_BREAKS = re.compile(r"\r\n|[\r\u2028\u2029\x85]")
_WHITESPACE = re.compile(r"\s+")


def _clean(value: str) -> str:
    """Text safe to hand to the libraries: line breaks as "\\n", other control
    characters (NUL, ESC, VT, DEL...) dropped; RFC 5545 3.3.11 and RFC 2426 allow
    none of them in a text value, and vobject and icalendar write them raw."""
    text = _LINE_BREAKS.sub("\n", value)
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")


def _one_line(value: str) -> str:
    """A title's text: cleaned, whitespace runs (newlines included) as one space,
    and cut to MAX_CALENDAR_FIELD_CHARS."""
    text = _WHITESPACE.sub(" ", _clean(value)).strip()
    if len(text) > MAX_CALENDAR_FIELD_CHARS:
        text = text[: MAX_CALENDAR_FIELD_CHARS - 1] + "…"
    return text


def _is_family_first(name: str) -> bool:
    return any(unicodedata.name(ch, "").startswith(_FAMILY_FIRST_SCRIPT_PREFIXES) for ch in name)


def _split_name(name: str) -> tuple[str, str]:
    """(family, given), best effort: the last word is the family name ("Mary Ann
    Smith" -> ("Smith", "Mary Ann")); a single word is a given name; names in
    family-first scripts stay whole. Characters are never changed, only split."""
    words = name.split()
    if not words:
        return "", ""
    if _is_family_first(name):
        return " ".join(words), ""
    if len(words) == 1:
        return "", words[0]
    return words[-1], " ".join(words[:-1])


def _note(lead: Lead) -> str:
    lines = [_clean(lead.notes).strip()]
    lead_id = _one_line(lead.id)
    if lead_id:
        lines.append(f"PollyBot lead {lead_id}")
    return "\n".join(line for line in lines if line)


def lead_vcard(lead: Lead, *, lead_url: str) -> str:
    """The lead as a vCard 3.0 (RFC 2426) contact, with `lead_url` (the absolute
    address of the lead's page) as its URL.

    EMAIL and TEL are written only when the lead's values pass the same checks as
    its mailto:/tel: links: an address book must not get "call me" as a number.
    """
    card = vobject.vCard()
    card.add("fn").value = _clean(lead.display_name)
    family, given = _split_name(_clean(lead.name))
    # N is required in vCard 3.0 even when only the ID is known: then it is empty.
    card.add("n").value = vobject.vcard.Name(family=family, given=given)
    if lead.email_href is not None:
        email = card.add("email")
        email.value = lead.email.strip()
        email.type_param = "INTERNET"
    if lead.phone_href is not None:
        # As written ("+1-555-123-4567"): address books format numbers themselves
        # and show the reader's own spelling back.
        card.add("tel").value = _clean(lead.phone).strip()
    company = _clean(lead.company).strip()
    if company:
        # ORG is a list of units (RFC 2426 3.5.5); a single unit keeps any ";" in
        # the company name as text, escaped by vobject.
        card.add("org").value = [company]
    job_title = _clean(lead.job_title).strip()
    if job_title:
        card.add("title").value = job_title
    note = _note(lead)
    if note:
        card.add("note").value = note
    card.add("url").value = _clean(lead_url).strip()
    text: str = card.serialize()
    return text


def _filename_slug(lead: Lead) -> str:
    """ASCII letters, digits, "-" and "_" only: safe in a Content-Disposition header
    and on every filesystem. Accents are folded ("José" -> "jose") by slugify."""
    for candidate in (lead.name, lead.id):
        slug = slugify(candidate)[:MAX_FILENAME_SLUG_CHARS].strip("-_")
        if slug:
            return slug
    return FALLBACK_FILENAME_SLUG


def vcard_filename(lead: Lead) -> str:
    """ "john-doe.vcf"; the lead ID's slug when the name gives none."""
    return f"{_filename_slug(lead)}.vcf"


def calendar_filename(lead: Lead) -> str:
    """ "follow-up-john-doe-2024-01-20.ics" (without the date when there is none)."""
    date = lead.follow_up.date
    suffix = f"-{date.isoformat()}" if date is not None else ""
    return f"follow-up-{_filename_slug(lead)}{suffix}.ics"


def _summary(lead: Lead) -> str:
    """ "Follow up: John Doe (Tech Corp)": one line, as calendars show titles."""
    summary = f"Follow up: {_one_line(lead.display_name)}"
    company = _one_line(lead.company)
    if company:
        summary += f" ({company})"
    return summary


def _description(lead: Lead, *, lead_url: str) -> str:
    lines = [f"Status: {_one_line(lead.status.label)}"]
    email = _one_line(lead.email)
    if email:
        lines.append(f"Email: {email}")
    phone = _one_line(lead.phone)
    if phone:
        lines.append(f"Phone: {phone}")
    lines.append(f"Lead: {_clean(lead_url).strip()}")
    return "\n".join(lines)


def _all_day_span(lead: Lead) -> tuple[datetime.date, datetime.date] | None:
    """(first day, day after): an all-day event's end is exclusive (RFC 5545
    3.6.1), and Google and Outlook read their end dates the same way."""
    date = lead.follow_up.date
    if date is None:
        return None
    return date, date + datetime.timedelta(days=1)


def follow_up_calendar(lead: Lead, *, lead_url: str, now: datetime.datetime) -> str | None:
    """An iCalendar (RFC 5545) file with one all-day event on the follow-up date;
    None when the lead has no valid follow-up date.

    An event rather than a VTODO: every calendar shows events, few show tasks.
    The UID depends only on the lead and the date, so importing the file again
    updates the event instead of adding a second one. `now` (aware) is the DTSTAMP.
    """
    span = _all_day_span(lead)
    if span is None:
        return None
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    start, end = span
    lead_url = _clean(lead_url).strip()

    event = icalendar.Event()
    event.add("uid", f"follow-up-{_one_line(lead.id)}-{start.isoformat()}@leadsite")
    event.add("dtstamp", now.astimezone(datetime.UTC))
    # date values (not datetimes): icalendar writes them as VALUE=DATE, all-day.
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", _summary(lead))
    event.add("description", _description(lead, lead_url=lead_url))
    event.add("url", lead_url)
    # A reminder to act, not a meeting: it must not mark the day as busy.
    event.add("transp", "TRANSPARENT")

    calendar = icalendar.Calendar()
    calendar.add("prodid", CALENDAR_PRODID)
    calendar.add("version", "2.0")
    # PUBLISH: a copy to add, not an invitation expecting a reply (RFC 5546 3.2.1).
    calendar.add("method", "PUBLISH")
    calendar.add_component(event)
    ical: bytes = calendar.to_ical()
    return ical.decode("utf-8")


def _query(params: dict[str, str]) -> str:
    # quote (not quote_plus): spaces as %20, which both services read as a space;
    # "/" kept as is, as in their documented links.
    return urllib.parse.urlencode(params, quote_via=urllib.parse.quote, safe="/")


def google_calendar_url(lead: Lead, *, lead_url: str) -> str | None:
    """A Google Calendar "add event" link for the follow-up day; None without one."""
    span = _all_day_span(lead)
    if span is None:
        return None
    start, end = span
    params = {
        "action": "TEMPLATE",
        "text": _summary(lead),
        # All-day: YYYYMMDD/YYYYMMDD with an exclusive end.
        "dates": f"{start:%Y%m%d}/{end:%Y%m%d}",
        "details": _description(lead, lead_url=lead_url),
    }
    return f"{GOOGLE_CALENDAR_URL}?{_query(params)}"


def outlook_calendar_url(lead: Lead, *, lead_url: str) -> str | None:
    """An Outlook.com "new event" link for the follow-up day; None without one."""
    span = _all_day_span(lead)
    if span is None:
        return None
    start, end = span
    params = {
        "path": "/calendar/action/compose",
        "rru": "addevent",
        "subject": _summary(lead),
        "startdt": start.isoformat(),
        "enddt": end.isoformat(),
        "allday": "true",
        "body": _description(lead, lead_url=lead_url),
    }
    return f"{OUTLOOK_CALENDAR_URL}?{_query(params)}"
