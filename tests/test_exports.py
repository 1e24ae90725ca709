"""Tests for leads/exports.py: vCard and calendar exports of one lead.

Every output is parsed back with the library that reads the format (vobject,
icalendar, urllib.parse) and checked field by field, so a test fails on a broken
structure as well as on a wrong value.
"""

from __future__ import annotations

import copy
import datetime
import string
import urllib.parse
from typing import Any

import icalendar
import pytest
import vobject

from leads.exports import (
    CALENDAR_PRODID,
    MAX_CALENDAR_FIELD_CHARS,
    MAX_FILENAME_SLUG_CHARS,
    calendar_filename,
    follow_up_calendar,
    google_calendar_url,
    lead_vcard,
    outlook_calendar_url,
    vcard_filename,
)
from leads.lead import Lead
from sandbox.data import SEED_LEAD

TODAY = datetime.date(2024, 1, 16)
NOW = datetime.datetime(2024, 1, 16, 12, 30, tzinfo=datetime.UTC)
LEAD_URL = "https://leads.example.com/leads/lead_1234567890abcdef/"

# The lead of the seed page, exactly as the sandbox serves it (tests/test_sandbox.py
# checks it against the seed's JSON).

HOSTILE_NAME = "A;B,C\nD<script>"
# Text that would end the card or event and start another if written unescaped.
INJECTION = "Evil; Corp,\r\nEND:VCARD\r\nBEGIN:VCARD\r\nFN:Injected\r\nEND:VEVENT\r\nBEGIN:VEVENT"


def make_lead(**changes: Any) -> Lead:
    """The seed lead with top-level fields or (for metadata keys) metadata replaced;
    a value of None removes the key."""
    data = copy.deepcopy(SEED_LEAD)
    for key, value in changes.items():
        target = data["metadata"] if key in data["metadata"] else data
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    return Lead.from_api(data, today=TODAY)


def parse_vcard(text: str) -> Any:
    cards = list(vobject.readComponents(text))
    assert len(cards) == 1, "exactly one card, whatever the lead's text"
    return cards[0]


def parse_event(text: str | None) -> Any:
    assert text is not None
    calendar = icalendar.Calendar.from_ical(text)
    events = calendar.walk("VEVENT")
    assert len(events) == 1, "exactly one event, whatever the lead's text"
    assert calendar.walk("VTODO") == []
    return events[0]


def values(card: Any, name: str) -> list[Any]:
    return [line.value for line in card.contents.get(name, [])]


# --- vCard ---------------------------------------------------------------------


def test_vcard_of_the_seed_lead_round_trips() -> None:
    text = lead_vcard(make_lead(), lead_url=LEAD_URL)
    card = parse_vcard(text)

    assert card.version.value == "3.0"
    assert card.fn.value == "John Doe"
    assert (card.n.value.family, card.n.value.given) == ("Doe", "John")
    assert values(card, "email") == ["john.doe@example.com"]
    assert card.email.params["TYPE"] == ["INTERNET"]
    assert values(card, "tel") == ["+1-555-123-4567"]
    assert values(card, "org") == [["Tech Corp"]]
    assert values(card, "title") == ["Marketing Manager"]
    assert values(card, "note") == [
        "Interested in premium package\nPollyBot lead lead_1234567890abcdef"
    ]
    assert values(card, "url") == [LEAD_URL]
    # Content lines end in CRLF (RFC 2426 section 4).
    assert text.startswith("BEGIN:VCARD\r\n")
    assert text.endswith("END:VCARD\r\n")


@pytest.mark.parametrize(
    "email",
    ["", "   ", "call me", "a@b.com, c@d.com", "a@b.com?cc=x@y.com", "javascript:alert(1)"],
)
def test_vcard_has_no_email_when_the_address_is_not_usable(email: str) -> None:
    card = parse_vcard(lead_vcard(make_lead(email=email), lead_url=LEAD_URL))
    assert values(card, "email") == []


@pytest.mark.parametrize("phone", ["", "call me", "ext. 4", "12", "+1 555 123 4567 x9"])
def test_vcard_has_no_tel_when_the_number_is_not_usable(phone: str) -> None:
    card = parse_vcard(lead_vcard(make_lead(phone=phone), lead_url=LEAD_URL))
    assert values(card, "tel") == []


def test_vcard_tel_keeps_the_number_as_written() -> None:
    card = parse_vcard(lead_vcard(make_lead(phone=" (020) 7946 0958 "), lead_url=LEAD_URL))
    assert values(card, "tel") == ["(020) 7946 0958"]


def test_vcard_leaves_out_blank_company_title_and_notes() -> None:
    lead = make_lead(company="", job_title="  ", notes=None)
    card = parse_vcard(lead_vcard(lead, lead_url=LEAD_URL))
    assert values(card, "org") == []
    assert values(card, "title") == []
    assert values(card, "note") == ["PollyBot lead lead_1234567890abcdef"]


def test_vcard_of_a_lead_without_a_name_uses_the_display_name_and_an_empty_n() -> None:
    card = parse_vcard(lead_vcard(make_lead(name=None), lead_url=LEAD_URL))
    assert card.fn.value == "john.doe@example.com"
    # N is required in vCard 3.0; the address is not split into a person's name.
    assert (card.n.value.family, card.n.value.given) == ("", "")


def test_vcard_hostile_name_round_trips_as_text() -> None:
    text = lead_vcard(make_lead(name=HOSTILE_NAME), lead_url=LEAD_URL)
    card = parse_vcard(text)

    assert card.fn.value == HOSTILE_NAME
    assert (card.n.value.given, card.n.value.family) == ("A;B,C", "D<script>")
    # The newline is written as the escape "\n", never as a line break.
    assert "FN:A\\;B\\,C\\nD<script>\r\n" in text
    assert not any(line.startswith("D<script>") for line in text.split("\r\n"))


def test_vcard_injection_stays_inside_its_values() -> None:
    lead = make_lead(company=INJECTION, job_title=INJECTION, notes=INJECTION, name=INJECTION)
    card = parse_vcard(lead_vcard(lead, lead_url=LEAD_URL))
    as_read = INJECTION.replace("\r\n", "\n")
    assert card.fn.value == as_read
    assert values(card, "org") == [[as_read]]
    assert values(card, "title") == [as_read]
    assert values(card, "note") == [as_read + "\nPollyBot lead lead_1234567890abcdef"]


def test_vcard_drops_control_characters() -> None:
    lead = make_lead(name="Jo\x00hn\x1b[31m D\x7foe\x0b", company="Te\rch\x0cCorp")
    text = lead_vcard(lead, lead_url=LEAD_URL)
    assert not any(ch in text.replace("\r\n", "") for ch in "\x00\x1b\x7f\x0b\x0c\r\n")
    card = parse_vcard(text)
    assert card.fn.value == "John[31m Doe"
    # A bare CR is a line break, written as the "\n" escape.
    assert values(card, "org") == [["Te\nchCorp"]]


@pytest.mark.parametrize(
    ("name", "family", "given"),
    [
        ("John Doe", "Doe", "John"),
        ("  Mary Ann   Smith ", "Smith", "Mary Ann"),
        ("Cher", "", "Cher"),
        ("José Müller", "Müller", "José"),
        ("Σωκράτης Παπαδόπουλος", "Παπαδόπουλος", "Σωκράτης"),
        ("Владимир Набоков", "Набоков", "Владимир"),
        # Family-first scripts are kept whole, not split or reordered.
        ("山田太郎", "山田太郎", ""),
        ("山田 太郎", "山田 太郎", ""),
        ("김민준", "김민준", ""),
    ],
)
def test_vcard_name_split(name: str, family: str, given: str) -> None:
    card = parse_vcard(lead_vcard(make_lead(name=name), lead_url=LEAD_URL))
    assert card.fn.value == name.strip()
    assert (card.n.value.family, card.n.value.given) == (family, given)


def test_vcard_long_non_latin_text_is_folded_and_round_trips() -> None:
    name = "山田太郎" * 40
    text = lead_vcard(make_lead(name=name, notes="ノート" * 100), lead_url=LEAD_URL)
    # Folded (RFC 2426 2.6) so that no line is absurdly long, without cutting a character.
    assert max(len(line.encode()) for line in text.split("\r\n")) <= 75
    card = parse_vcard(text)
    assert card.fn.value == name
    assert card.note.value.startswith("ノート" * 100)


# --- Calendar ------------------------------------------------------------------


def test_calendar_of_the_seed_lead() -> None:
    text = follow_up_calendar(make_lead(), lead_url=LEAD_URL, now=NOW)
    assert text is not None
    calendar = icalendar.Calendar.from_ical(text)
    assert str(calendar["prodid"]) == CALENDAR_PRODID
    assert str(calendar["version"]) == "2.0"
    assert str(calendar["method"]) == "PUBLISH"

    event = parse_event(text)
    start = event["dtstart"].dt
    end = event["dtend"].dt
    # All-day: dates, not datetimes (datetime is a subclass of date).
    assert type(start) is datetime.date
    assert type(end) is datetime.date
    assert start == datetime.date(2024, 1, 20)
    assert end == datetime.date(2024, 1, 21)
    assert "DTSTART;VALUE=DATE:20240120\r\n" in text
    assert str(event["summary"]) == "Follow up: John Doe (Tech Corp)"
    assert str(event["url"]) == LEAD_URL
    assert str(event["uid"]) == "follow-up-lead_1234567890abcdef-2024-01-20@leadsite"
    assert event["dtstamp"].dt == NOW
    assert str(event["transp"]) == "TRANSPARENT"
    description = str(event["description"])
    for part in ("Contacted", "john.doe@example.com", "+1-555-123-4567", LEAD_URL):
        assert part in description


def test_calendar_dtstamp_is_now_in_utc() -> None:
    paris = datetime.timezone(datetime.timedelta(hours=1))
    now = datetime.datetime(2024, 1, 16, 13, 30, tzinfo=paris)
    text = follow_up_calendar(make_lead(), lead_url=LEAD_URL, now=now)
    assert text is not None
    assert "DTSTAMP:20240116T123000Z\r\n" in text
    assert parse_event(text)["dtstamp"].dt == NOW


def test_calendar_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        follow_up_calendar(make_lead(), lead_url=LEAD_URL, now=datetime.datetime(2024, 1, 16))


def test_calendar_uid_is_stable_per_lead_and_date() -> None:
    later = NOW + datetime.timedelta(days=3)
    first = parse_event(follow_up_calendar(make_lead(), lead_url=LEAD_URL, now=NOW))
    second = parse_event(follow_up_calendar(make_lead(), lead_url=LEAD_URL, now=later))
    moved = parse_event(
        follow_up_calendar(make_lead(follow_up_date="2024-02-01"), lead_url=LEAD_URL, now=NOW)
    )
    other = parse_event(follow_up_calendar(make_lead(id="lead_other"), lead_url=LEAD_URL, now=NOW))
    assert str(first["uid"]) == str(second["uid"])
    assert first["dtstamp"].dt != second["dtstamp"].dt
    assert len({str(first["uid"]), str(moved["uid"]), str(other["uid"])}) == 3


@pytest.mark.parametrize(
    ("follow_up_date", "start", "end"),
    [
        ("2024-01-20", datetime.date(2024, 1, 20), datetime.date(2024, 1, 21)),
        ("2024-02-28", datetime.date(2024, 2, 28), datetime.date(2024, 2, 29)),
        ("2024-12-31", datetime.date(2024, 12, 31), datetime.date(2025, 1, 1)),
        # A datetime's date part is taken as written (Lead.follow_up), not moved to UTC.
        ("2024-01-20T23:00:00-05:00", datetime.date(2024, 1, 20), datetime.date(2024, 1, 21)),
        ("2023-12-01", datetime.date(2023, 12, 1), datetime.date(2023, 12, 2)),  # overdue
    ],
)
def test_calendar_dates(follow_up_date: str, start: datetime.date, end: datetime.date) -> None:
    lead = make_lead(follow_up_date=follow_up_date)
    event = parse_event(follow_up_calendar(lead, lead_url=LEAD_URL, now=NOW))
    assert (event["dtstart"].dt, event["dtend"].dt) == (start, end)
    assert calendar_filename(lead) == f"follow-up-john-doe-{start.isoformat()}.ics"


@pytest.mark.parametrize("follow_up_date", [None, "", "  ", "next week", 20240120, "2024-02-30"])
def test_no_calendar_without_a_valid_follow_up_date(follow_up_date: Any) -> None:
    lead = make_lead(follow_up_date=follow_up_date)
    assert lead.follow_up.date is None
    assert follow_up_calendar(lead, lead_url=LEAD_URL, now=NOW) is None
    assert google_calendar_url(lead, lead_url=LEAD_URL) is None
    assert outlook_calendar_url(lead, lead_url=LEAD_URL) is None


@pytest.mark.parametrize(
    ("changes", "summary"),
    [
        ({}, "Follow up: John Doe (Tech Corp)"),
        ({"company": ""}, "Follow up: John Doe"),
        ({"company": None, "name": None}, "Follow up: john.doe@example.com"),
        ({"name": "山田太郎", "company": "株式会社"}, "Follow up: 山田太郎 (株式会社)"),
        # A title is one line: whitespace runs, newlines included, become one space.
        ({"name": HOSTILE_NAME}, "Follow up: A;B,C D<script> (Tech Corp)"),
    ],
)
def test_calendar_summary(changes: dict[str, Any], summary: str) -> None:
    event = parse_event(follow_up_calendar(make_lead(**changes), lead_url=LEAD_URL, now=NOW))
    assert str(event["summary"]) == summary


def test_calendar_injection_stays_inside_its_values() -> None:
    lead = make_lead(name=INJECTION, company=INJECTION, email=INJECTION, phone=INJECTION)
    text = follow_up_calendar(lead, lead_url=LEAD_URL, now=NOW)
    event = parse_event(text)
    one_line = " ".join(INJECTION.split())
    assert str(event["summary"]) == f"Follow up: {one_line} ({one_line})"
    assert f"Email: {one_line}" in str(event["description"])
    assert str(event["url"]) == LEAD_URL


def test_calendar_drops_control_characters() -> None:
    # icalendar writes a bare CR or an ESC raw; RFC 5545 3.3.11 allows neither.
    lead = make_lead(name="Jo\rhn\x00 Doe\x1b", email="a\x0bb", phone="1\x7f2")
    text = follow_up_calendar(lead, lead_url=LEAD_URL, now=NOW)
    assert text is not None
    assert not any(ch in text.replace("\r\n", "") for ch in "\x00\x1b\x7f\x0b\r\n")
    event = parse_event(text)
    assert str(event["summary"]) == "Follow up: Jo hn Doe (Tech Corp)"
    assert "Email: ab\nPhone: 12\n" in str(event["description"])


def test_calendar_caps_hostile_field_lengths() -> None:
    huge = "x" * 100_000
    lead = make_lead(name=huge, company=huge, email=huge, phone=huge)
    event = parse_event(follow_up_calendar(lead, lead_url=LEAD_URL, now=NOW))
    capped = "x" * (MAX_CALENDAR_FIELD_CHARS - 1) + "…"
    assert str(event["summary"]) == f"Follow up: {capped} ({capped})"
    assert len(str(event["description"])) < 4 * MAX_CALENDAR_FIELD_CHARS + len(LEAD_URL)


# --- Filenames -----------------------------------------------------------------

FORBIDDEN_IN_FILENAMES = set('/\\"') | {chr(i) for i in range(32)} | {"\x7f"}


@pytest.mark.parametrize(
    ("name", "lead_id", "stem"),
    [
        ("John Doe", "lead_1234567890abcdef", "john-doe"),
        ("José Müller-Lüdenscheidt", "lead_1", "jose-muller-ludenscheidt"),
        ("Zoë  O'Brien", "lead_1", "zoe-obrien"),
        # Nothing ASCII to keep: the lead ID.
        ("山田太郎", "lead_1234567890abcdef", "lead_1234567890abcdef"),
        ("Σωκράτης", "lead_abc", "lead_abc"),
        ("", "lead_abc", "lead_abc"),
        ("   ", "lead_abc", "lead_abc"),
        ("../../etc/passwd", "lead_abc", "etcpasswd"),
        ('a"b\\c/d\r\nX', "lead_abc", "abcd-x"),
        ("<script>alert(1)</script>", "lead_abc", "scriptalert1script"),
        ("---", "lead_abc", "lead_abc"),
        # Neither name nor ID gives a slug.
        ("", "", "lead"),
        ("山田", "../", "lead"),
        ("a" * 500, "lead_abc", "a" * MAX_FILENAME_SLUG_CHARS),
    ],
)
def test_filenames(name: str, lead_id: str, stem: str) -> None:
    lead = make_lead(name=name, id=lead_id)
    vcf = vcard_filename(lead)
    ics = calendar_filename(lead)
    assert vcf == f"{stem}.vcf"
    assert ics == f"follow-up-{stem}-2024-01-20.ics"
    for filename in (vcf, ics):
        assert filename.isascii()
        assert not FORBIDDEN_IN_FILENAMES & set(filename)
        assert set(filename) <= set(string.ascii_lowercase + string.digits + "-_.")


def test_calendar_filename_without_a_date() -> None:
    assert calendar_filename(make_lead(follow_up_date=None)) == "follow-up-john-doe.ics"


# --- Google and Outlook links --------------------------------------------------


def split(url: str | None) -> tuple[urllib.parse.SplitResult, dict[str, list[str]]]:
    assert url is not None
    for raw in (" ", "\n", "\r", "\t"):
        assert raw not in url
    parts = urllib.parse.urlsplit(url)
    assert parts.fragment == ""
    return parts, urllib.parse.parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)


def test_google_calendar_url_of_the_seed_lead() -> None:
    parts, query = split(google_calendar_url(make_lead(), lead_url=LEAD_URL))
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "calendar.google.com",
        "/calendar/render",
    )
    assert query["action"] == ["TEMPLATE"]
    assert query["text"] == ["Follow up: John Doe (Tech Corp)"]
    assert query["dates"] == ["20240120/20240121"]
    (details,) = query["details"]
    assert details.splitlines() == [
        "Status: Contacted",
        "Email: john.doe@example.com",
        "Phone: +1-555-123-4567",
        f"Lead: {LEAD_URL}",
    ]


def test_outlook_calendar_url_of_the_seed_lead() -> None:
    parts, query = split(outlook_calendar_url(make_lead(), lead_url=LEAD_URL))
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "outlook.live.com",
        "/calendar/0/deeplink/compose",
    )
    assert query["path"] == ["/calendar/action/compose"]
    assert query["rru"] == ["addevent"]
    assert query["subject"] == ["Follow up: John Doe (Tech Corp)"]
    assert query["startdt"] == ["2024-01-20"]
    assert query["enddt"] == ["2024-01-21"]
    assert query["allday"] == ["true"]
    (body,) = query["body"]
    assert "Status: Contacted" in body
    assert LEAD_URL in body


@pytest.mark.parametrize("build", [google_calendar_url, outlook_calendar_url])
def test_calendar_links_keep_hostile_text_inside_their_parameters(build: Any) -> None:
    name = "Ann & Bob\n#x=1&dates=19990101/19990102&startdt=1999-01-01 +%20"
    _parts, query = split(build(make_lead(name=name, company="A?B=C"), lead_url=LEAD_URL))
    title = query.get("text") or query["subject"]
    assert title == [f"Follow up: {' '.join(name.split())} (A?B=C)"]
    assert query.get("dates", ["20240120/20240121"]) == ["20240120/20240121"]
    assert query.get("startdt", ["2024-01-20"]) == ["2024-01-20"]
    assert all(len(v) == 1 for v in query.values())


@pytest.mark.parametrize("build", [google_calendar_url, outlook_calendar_url])
def test_calendar_links_stay_short_with_huge_fields(build: Any) -> None:
    huge = "é" * 100_000
    url = build(make_lead(name=huge, company=huge, email=huge, phone=huge), lead_url=LEAD_URL)
    # Four capped fields, percent-encoded (6 bytes per "é"), plus the fixed parts.
    assert len(url) < 4 * 6 * MAX_CALENDAR_FIELD_CHARS + 1000
