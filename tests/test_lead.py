"""Tests for leads/lead.py: Lead.from_api and its parts (pure, no I/O, frozen `today`)."""

from __future__ import annotations

import copy
import datetime
import pickle
from typing import Any

import pytest

from leads.lead import (
    KNOWN_STATUSES,
    FollowUp,
    FollowUpKind,
    Lead,
    MetadataField,
    Moment,
    Status,
    humanize_key,
)
from sandbox.data import SEED_LEAD

UTC = datetime.UTC

# The lead of the seed page, exactly as the sandbox serves it (tests/test_sandbox.py
# checks it against the seed's JSON).

SEED_FOLLOW_UP = datetime.date(2024, 1, 20)


def seed_with(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(SEED_LEAD)
    data.update(changes)
    return data


def seed_with_metadata(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(SEED_LEAD)
    data["metadata"].update(changes)
    return data


# --- the seed lead -------------------------------------------------------------


def test_seed_lead_fields() -> None:
    lead = Lead.from_api(SEED_LEAD, today=datetime.date(2024, 1, 16))

    assert lead.id == "lead_1234567890abcdef"
    assert lead.name == "John Doe"
    assert lead.display_name == "John Doe"
    assert lead.email == "john.doe@example.com"
    assert lead.phone == "+1-555-123-4567"
    assert lead.source == "website"
    assert lead.status == Status(
        value="contacted", label="Contacted", known=True, css_class="status-contacted"
    )
    assert lead.company == "Tech Corp"
    assert lead.job_title == "Marketing Manager"
    assert lead.interests == ("product_a", "product_b")
    assert lead.notes == "Interested in premium package"
    assert lead.utm == (
        MetadataField(key="utm_source", label="UTM source", value="google"),
        MetadataField(key="utm_campaign", label="UTM campaign", value="spring_2024"),
    )
    assert lead.other_metadata == ()
    assert lead.workspace_id == "ws_your_workspace_id"
    assert lead.last_interaction == Moment(
        raw="2024-01-16T14:30:00.000Z",
        value=datetime.datetime(2024, 1, 16, 14, 30, tzinfo=UTC),
    )
    assert lead.created_at is not None
    assert lead.created_at.value == datetime.datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    assert lead.updated_at is not None
    assert lead.updated_at.value == datetime.datetime(2024, 1, 16, 14, 30, tzinfo=UTC)
    assert lead.email_href == "mailto:john.doe@example.com"
    assert lead.phone_href == "tel:+15551234567"


@pytest.mark.parametrize(
    ("today", "kind", "days", "text"),
    [
        (datetime.date(2024, 1, 23), FollowUpKind.OVERDUE, 3, "Overdue by 3 days"),
        (datetime.date(2024, 1, 21), FollowUpKind.OVERDUE, 1, "Overdue by 1 day"),
        (datetime.date(2024, 1, 20), FollowUpKind.TODAY, 0, "Due today"),
        (datetime.date(2024, 1, 19), FollowUpKind.UPCOMING, 1, "Tomorrow"),
        (datetime.date(2024, 1, 16), FollowUpKind.UPCOMING, 4, "In 4 days"),
        # Across a year boundary the calendar still counts days.
        (datetime.date(2023, 12, 31), FollowUpKind.UPCOMING, 20, "In 20 days"),
    ],
)
def test_seed_follow_up_against_frozen_today(
    today: datetime.date, kind: FollowUpKind, days: int, text: str
) -> None:
    follow_up = Lead.from_api(SEED_LEAD, today=today).follow_up

    assert follow_up.kind is kind
    assert follow_up.date == SEED_FOLLOW_UP
    assert follow_up.raw == "2024-01-20"
    assert follow_up.days == days
    assert follow_up.text == text
    assert follow_up.css_class == f"followup-{kind.value}"


def test_from_api_does_not_modify_its_input() -> None:
    data = copy.deepcopy(SEED_LEAD)
    Lead.from_api(data, today=SEED_FOLLOW_UP)
    assert data == SEED_LEAD


def test_lead_is_frozen_and_pickles() -> None:
    # Services may cache a Lead; it must survive pickling and never change in place.
    lead = Lead.from_api(seed_with_metadata(lead_score=85), today=SEED_FOLLOW_UP)
    assert pickle.loads(pickle.dumps(lead)) == lead  # noqa: S301 (our own bytes)
    with pytest.raises(AttributeError):
        lead.name = "Mallory"  # type: ignore[misc]


# --- follow-up ------------------------------------------------------------------

TODAY = datetime.date(2024, 1, 20)


@pytest.mark.parametrize(
    ("raw", "kind", "date", "days", "text"),
    [
        ("2024-01-20", FollowUpKind.TODAY, TODAY, 0, "Due today"),
        (" 2024-01-22 ", FollowUpKind.UPCOMING, datetime.date(2024, 1, 22), 2, "In 2 days"),
        ("2024-01-10", FollowUpKind.OVERDUE, datetime.date(2024, 1, 10), 10, "Overdue by 10 days"),
        # A full ISO datetime: its date part as written, whatever the offset.
        ("2024-01-21T00:00Z", FollowUpKind.UPCOMING, datetime.date(2024, 1, 21), 1, "Tomorrow"),
        ("2024-01-20T23:30:00-08:00", FollowUpKind.TODAY, TODAY, 0, "Due today"),
        (
            "2024-01-19 09:00",
            FollowUpKind.OVERDUE,
            datetime.date(2024, 1, 19),
            1,
            "Overdue by 1 day",
        ),
        (None, FollowUpKind.NONE, None, 0, "No follow-up set"),
        ("", FollowUpKind.NONE, None, 0, "No follow-up set"),
        ("   ", FollowUpKind.NONE, None, 0, "No follow-up set"),
    ],
)
def test_follow_up_kinds(
    raw: Any, kind: FollowUpKind, date: datetime.date | None, days: int, text: str
) -> None:
    follow_up = FollowUp.from_value(raw, today=TODAY)

    assert follow_up.kind is kind
    assert follow_up.date == date
    assert follow_up.days == days
    assert follow_up.text == text
    assert follow_up.css_class == "followup-" + kind.value


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        ("next tuesday", "next tuesday"),
        ("2024-02-30", "2024-02-30"),
        ("2024-1-5", "2024-1-5"),
        ("20240120", "20240120"),
        ("2024-01-20Tsoon", "2024-01-20Tsoon"),
        ("2024-01-20T25:00:00", "2024-01-20T25:00:00"),
        ("<script>", "<script>"),
        # Non-str JSON values are never read as dates (a number could be anything).
        (20240120, "20240120"),
        (1705708800.5, "1705708800.5"),
        (True, "True"),
        (["2024-01-20"], '["2024-01-20"]'),
        ({"date": "2024-01-20"}, '{"date":"2024-01-20"}'),
    ],
)
def test_follow_up_invalid(raw: Any, quoted: str) -> None:
    follow_up = FollowUp.from_value(raw, today=TODAY)

    assert follow_up == FollowUp(kind=FollowUpKind.INVALID, date=None, raw=quoted, days=0)
    assert follow_up.text == f'Follow-up date "{quoted}" is not a date'
    assert follow_up.css_class == "followup-invalid"


def test_follow_up_missing_key_in_metadata() -> None:
    data = copy.deepcopy(SEED_LEAD)
    del data["metadata"]["follow_up_date"]
    follow_up = Lead.from_api(data, today=TODAY).follow_up
    assert follow_up == FollowUp(kind=FollowUpKind.NONE, date=None, raw="", days=0)


def test_invalid_follow_up_text_quotes_a_bounded_excerpt() -> None:
    follow_up = FollowUp.from_value("x" * 10_000, today=TODAY)
    assert follow_up.kind is FollowUpKind.INVALID
    assert follow_up.raw == "x" * 10_000  # kept as given
    assert len(follow_up.text) < 100
    assert follow_up.text.endswith('…" is not a date')


def test_follow_up_far_from_utc_uses_the_local_calendar_date() -> None:
    # 21:00 on 19 January in Honolulu (UTC-10) is already 20 January in UTC. The
    # site passes the local date; a follow-up due on the 20th is still tomorrow
    # there, not "due today" as a UTC reading would say.
    honolulu = datetime.timezone(datetime.timedelta(hours=-10))
    now = datetime.datetime(2024, 1, 19, 21, 0, tzinfo=honolulu)
    assert now.astimezone(UTC).date() == datetime.date(2024, 1, 20)

    lead = Lead.from_api(SEED_LEAD, today=now.date())
    assert lead.follow_up.kind is FollowUpKind.UPCOMING
    assert lead.follow_up.text == "Tomorrow"

    # And at 08:00 on 21 January in Auckland (UTC+13) it is still the 20th in UTC,
    # yet the follow-up is overdue by the local calendar.
    auckland = datetime.timezone(datetime.timedelta(hours=13))
    now = datetime.datetime(2024, 1, 21, 8, 0, tzinfo=auckland)
    assert now.astimezone(UTC).date() == datetime.date(2024, 1, 20)
    lead = Lead.from_api(SEED_LEAD, today=now.date())
    assert lead.follow_up.text == "Overdue by 1 day"

    # A datetime-shaped follow-up keeps the day it names, not its UTC day.
    lead = Lead.from_api(
        seed_with_metadata(follow_up_date="2024-01-20T22:00:00-10:00"),
        today=datetime.date(2024, 1, 20),
    )
    assert lead.follow_up.date == datetime.date(2024, 1, 20)
    assert lead.follow_up.kind is FollowUpKind.TODAY


# --- status ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value", "label", "known", "css_class"),
    [
        ("new", "new", "New", True, "status-new"),
        ("contacted", "contacted", "Contacted", True, "status-contacted"),
        ("qualified", "qualified", "Qualified", True, "status-qualified"),
        ("converted", "converted", "Converted", True, "status-converted"),
        ("lost", "lost", "Lost", True, "status-lost"),
        ("follow_up", "follow_up", "Follow-up", True, "status-follow-up"),
        # Stray case and whitespace from hand-edited data still match.
        (" Contacted ", " Contacted ", "Contacted", True, "status-contacted"),
        ("On hold", "On hold", "On hold", False, "status-other"),
        ("<script>x</script>", "<script>x</script>", "<script>x</script>", False, "status-other"),
        ("new status-evil", "new status-evil", "new status-evil", False, "status-other"),
        ("", "", "Unknown", False, "status-other"),
        ("  ", "  ", "Unknown", False, "status-other"),
        (None, "", "Unknown", False, "status-other"),
        (3, "3", "3", False, "status-other"),
        (["new"], '["new"]', '["new"]', False, "status-other"),
    ],
)
def test_status(raw: Any, value: str, label: str, known: bool, css_class: str) -> None:
    status = Lead.from_api(seed_with(status=raw), today=TODAY).status
    assert status == Status(value=value, label=label, known=known, css_class=css_class)


def test_status_missing() -> None:
    data = copy.deepcopy(SEED_LEAD)
    del data["status"]
    assert Lead.from_api(data, today=TODAY).status == Status(
        value="", label="Unknown", known=False, css_class="status-other"
    )


def test_known_statuses_are_the_api_values() -> None:
    assert list(KNOWN_STATUSES) == [
        "new",
        "contacted",
        "qualified",
        "converted",
        "lost",
        "follow_up",
    ]


# --- timestamps -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-01-15T10:30:00.000Z", datetime.datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
        ("2024-01-15T10:30:00Z", datetime.datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
        # An offset is honoured and normalised to UTC.
        ("2024-01-15T10:30:00+05:30", datetime.datetime(2024, 1, 15, 5, 0, tzinfo=UTC)),
        ("2024-01-15T22:30:00-08:00", datetime.datetime(2024, 1, 16, 6, 30, tzinfo=UTC)),
        # A naive string is taken as UTC.
        ("2024-01-15T10:30:00", datetime.datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
        ("2024-01-15 10:30:00.5", datetime.datetime(2024, 1, 15, 10, 30, 0, 500000, tzinfo=UTC)),
        ("2024-01-15", datetime.datetime(2024, 1, 15, tzinfo=UTC)),
        # Bad dates are kept as given, with no value.
        ("yesterday", None),
        ("2024-13-01T00:00:00Z", None),
        ("2024-01-15T10:30:00.000ZZ", None),
        ("<img src=x onerror=alert(1)>", None),
    ],
)
def test_moment_parse(raw: str, expected: datetime.datetime | None) -> None:
    moment = Moment.parse(raw)
    assert moment is not None
    assert moment.raw == raw
    assert moment.value == expected
    assert moment.is_valid is (expected is not None)
    if moment.value is not None:
        assert moment.value.utcoffset() == datetime.timedelta(0)


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_moment_missing_is_none(raw: Any) -> None:
    assert Moment.parse(raw) is None


@pytest.mark.parametrize(
    ("raw", "shown"),
    [(1705314600, "1705314600"), (1.5, "1.5"), (False, "False"), ({"t": 1}, '{"t":1}')],
)
def test_moment_non_string_is_shown_not_guessed(raw: Any, shown: str) -> None:
    assert Moment.parse(raw) == Moment(raw=shown, value=None)


def test_moment_that_cannot_move_to_utc_keeps_its_offset() -> None:
    moment = Moment.parse("0001-01-01T00:00:00+01:00")
    assert moment is not None
    assert moment.value is not None
    assert moment.value.utcoffset() == datetime.timedelta(hours=1)


def test_lead_timestamps_missing_and_bad() -> None:
    data = seed_with(createdAt="not a date", updatedAt=None)
    del data["metadata"]["last_interaction"]
    lead = Lead.from_api(data, today=TODAY)
    assert lead.created_at == Moment(raw="not a date", value=None)
    assert lead.updated_at is None
    assert lead.last_interaction is None


# --- humanize_key ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("utm_source", "UTM source"),
        ("utm_campaign", "UTM campaign"),
        ("job_title", "Job title"),
        ("lead_score", "Lead score"),
        ("firstContact", "First contact"),
        ("linkedin_url", "LinkedIn URL"),
        ("user_id", "User ID"),
        ("userID", "User ID"),
        ("crm_ids", "CRM IDs"),
        ("api_key_name", "API key name"),
        ("websiteURL", "Website URL"),
        ("HTTPReferrer", "HTTP referrer"),
        ("budget", "Budget"),
        ("Budget-range", "Budget range"),
        ("  spaced  key ", "Spaced key"),
        ("address2", "Address2"),
        ("_private", "Private"),
        ("", "(empty key)"),
        ("   ", "(empty key)"),
        ("__", "__"),
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),
        ("Société_name", "Société name"),
    ],
)
def test_humanize_key(key: str, label: str) -> None:
    assert humanize_key(key) == label


def test_humanize_key_tolerates_a_non_string() -> None:
    assert humanize_key(42) == "42"  # type: ignore[arg-type]


# --- links ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "href"),
    [
        ("john.doe@example.com", "mailto:john.doe@example.com"),
        ("  jane+sales@example.co.uk ", "mailto:jane+sales@example.co.uk"),
        ("josé@exämple.de", "mailto:josé@exämple.de"),
        ("", None),
        ("john.doe", None),
        ("javascript:alert(1)", None),
        ("javascript:alert(1)//@example.com", None),
        ("a@b.c?cc=x", None),
        ("a@b.c?cc=boss@example.com", None),
        ("a@example.com,b@example.com", None),
        ("a@example.com;b@example.com", None),
        ("a@b@example.com", None),
        ("a b@example.com", None),
        ("a@example.com\nBcc: x@example.com", None),
        ('"><script>@example.com', None),
        ("<a@example.com>", None),
        ("a%3Fcc=x@example.com", None),
        ("@example.com", None),
        ("a@", None),
        ("a@localhost", None),
        ("a@.example.com", None),
        ("a@example.com.", None),
        ("x" * 250 + "@example.com", None),
    ],
)
def test_email_href(email: str, href: str | None) -> None:
    assert Lead.from_api(seed_with(email=email), today=TODAY).email_href == href


@pytest.mark.parametrize(
    ("phone", "href"),
    [
        ("+1-555-123-4567", "tel:+15551234567"),
        ("(555) 123.4567", "tel:5551234567"),
        (" +44 20 7946 0958 ", "tel:+442079460958"),
        ("112", "tel:112"),
        (5551234567, "tel:5551234567"),
        ("12", None),
        ("", None),
        ("call me", None),
        ("555-1234 ext 5", None),
        ("+1-555-CALL-NOW", None),
        ("++15551234567", None),
        ("555+1234", None),
        ("javascript:alert(1)", None),
        ("tel:5551234567", None),
        ("555-1234;phone-context=evil", None),
        ("١٢٣٤٥٦٧", None),  # Arabic-Indic digits: not dialable as written
        ("1" * 21, None),
    ],
)
def test_phone_href(phone: Any, href: str | None) -> None:
    assert Lead.from_api(seed_with(phone=phone), today=TODAY).phone_href == href


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({"name": "John Doe"}, "John Doe"),
        ({"name": "  ", "email": "j@example.com"}, "j@example.com"),
        ({"name": None, "email": None, "id": "lead_abc"}, "lead_abc"),
        ({"name": "", "email": "", "id": ""}, "Unnamed lead"),
        ({"name": None, "email": None, "id": None}, "Unnamed lead"),
    ],
)
def test_display_name(fields: dict[str, Any], shown: str) -> None:
    assert Lead.from_api(seed_with(**fields), today=TODAY).display_name == shown


# --- metadata split ---------------------------------------------------------------


def test_other_metadata_keeps_unknown_keys_in_received_order() -> None:
    metadata = {
        "lead_score": 85,
        "utm_source": "google",
        "company": "Tech Corp",
        "budget": {"min": 1000, "max": 5000},
        "utm_medium": "cpc",
        "timeline": "Q2",
        "<script>": "x",
        "": None,
        "tags": ["a", "b"],
    }
    lead = Lead.from_api(seed_with(metadata=metadata), today=TODAY)

    assert lead.other_metadata == (
        MetadataField(key="lead_score", label="Lead score", value=85),
        MetadataField(key="budget", label="Budget", value={"min": 1000, "max": 5000}),
        MetadataField(key="timeline", label="Timeline", value="Q2"),
        MetadataField(key="<script>", label="<script>", value="x"),
        MetadataField(key="", label="(empty key)", value=None),
        MetadataField(key="tags", label="Tags", value=["a", "b"]),
    )
    assert [field.key for field in lead.utm] == ["utm_source", "utm_medium"]
    assert lead.company == "Tech Corp"


@pytest.mark.parametrize(
    ("raw", "interests"),
    [
        (["product_a", "product_b"], ("product_a", "product_b")),
        ("product_a", ("product_a",)),
        (42, ("42",)),
        ([1, 2.5, True, None, "", {"a": 1}, ["x"]], ("1", "2.5", "True", '{"a":1}', '["x"]')),
        ({"a": 1}, ('{"a":1}',)),
        ([], ()),
        (None, ()),
        ("", ()),
    ],
)
def test_interests(raw: Any, interests: tuple[str, ...]) -> None:
    lead = Lead.from_api(seed_with_metadata(interests=raw), today=TODAY)
    assert lead.interests == interests


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("Tech Corp", "Tech Corp"),
        (None, ""),
        (123, "123"),
        (1.5, "1.5"),
        (False, "False"),
        ({"name": "Tech Corp", "size": 50}, '{"name":"Tech Corp","size":50}'),
        (["Tech", "Corp"], '["Tech","Corp"]'),
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),
    ],
)
def test_known_keys_of_unusable_type_are_consumed_as_text(raw: Any, text: str) -> None:
    lead = Lead.from_api(seed_with_metadata(company=raw, job_title=raw, notes=raw), today=TODAY)
    assert lead.company == text
    assert lead.job_title == text
    assert lead.notes == text
    assert all(f.key not in {"company", "job_title", "notes"} for f in lead.other_metadata)


@pytest.mark.parametrize(
    ("field", "raw", "text"),
    [
        ("id", 12345, "12345"),
        ("name", None, ""),
        ("name", ["John", "Doe"], '["John","Doe"]'),
        ("email", {"work": "a@example.com"}, '{"work":"a@example.com"}'),
        ("source", 1.0, "1.0"),
        ("workspaceId", True, "True"),
    ],
)
def test_top_level_str_fields_coerced(field: str, raw: Any, text: str) -> None:
    lead = Lead.from_api(seed_with(**{field: raw}), today=TODAY)
    attribute = {"workspaceId": "workspace_id"}.get(field, field)
    assert getattr(lead, attribute) == text


# --- hostile data never raises -------------------------------------------------------

HOSTILE_INPUTS: list[dict[Any, Any]] = [
    {},
    {"metadata": None},
    {"metadata": "not an object"},
    {"metadata": ["utm_source", "google"]},
    {"metadata": 42},
    {"metadata": {1: "int key", None: "none key", "utm_": None}},
    {
        "id": ["lead_1"],
        "name": {"first": "<script>alert(1)</script>"},
        "email": 12,
        "phone": [1, 2, 3],
        "source": None,
        "status": {"value": "new"},
        "createdAt": [2024, 1, 15],
        "updatedAt": {"$date": 0},
        "workspaceId": 3.5,
        "metadata": {
            "company": ["<script>"],
            "job_title": 1e308,
            "interests": {"<script>": "x"},
            "notes": float("nan"),
            "last_interaction": True,
            "follow_up_date": {"date": "2024-01-20"},
            "utm_source": ['"><img src=x onerror=alert(1)>'],
            "<script>alert(1)</script>": "javascript:alert(1)",
            "website": "javascript:alert(1)",
        },
    },
    {"name": "\x00\u202e\ufeff", "status": "\n", "metadata": {"follow_up_date": "\u0000"}},
    {"createdAt": "9999-12-31T23:59:59-23:59", "metadata": {"follow_up_date": "9999-12-31"}},
    {"metadata": {"follow_up_date": "0001-01-01", "last_interaction": "0001-01-01T00:00:00+23:00"}},
]


@pytest.mark.parametrize("data", HOSTILE_INPUTS)
def test_hostile_data_never_raises(data: dict[Any, Any]) -> None:
    lead = Lead.from_api(data, today=TODAY)

    # Everything a template touches is computable and of the promised type.
    assert isinstance(lead.display_name, str)
    assert lead.email_href is None or lead.email_href.startswith("mailto:")
    assert lead.phone_href is None or lead.phone_href.startswith("tel:")
    assert isinstance(lead.follow_up.text, str)
    assert lead.status.css_class.startswith("status-")
    assert all(isinstance(item, str) for item in lead.interests)
    for field in (*lead.utm, *lead.other_metadata):
        assert isinstance(field.key, str)
        assert isinstance(field.label, str)


def test_non_dict_metadata_is_treated_as_empty() -> None:
    lead = Lead.from_api(seed_with(metadata="company=Tech Corp"), today=TODAY)
    assert lead.company == ""
    assert lead.utm == ()
    assert lead.other_metadata == ()
    assert lead.interests == ()
    assert lead.follow_up.kind is FollowUpKind.NONE
    # The rest of the lead is intact.
    assert lead.display_name == "John Doe"


def test_hostile_values_are_kept_verbatim_for_autoescaping() -> None:
    # lead.py does not escape (the templates do); it must not mangle the text either.
    hostile = '"><img src=x onerror=alert(1)>'
    lead = Lead.from_api(seed_with(name=hostile), today=TODAY)
    assert lead.name == hostile
    assert lead.display_name == hostile


def test_non_mapping_data_gives_an_empty_lead() -> None:
    lead = Lead.from_api(["not", "a", "dict"], today=TODAY)  # type: ignore[arg-type]
    assert lead.display_name == "Unnamed lead"
    assert lead.status.label == "Unknown"
