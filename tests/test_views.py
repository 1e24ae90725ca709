"""The pages, against the stand-in API over real HTTP (nothing mocked)."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from sandbox.data import SEED_LEAD

SEED_URL = "/leads/lead_1234567890abcdef/"

pytestmark = pytest.mark.django_db


def api_calls(sandbox) -> list[str]:
    return [r.path for r in sandbox.app.requests]


# --- login ------------------------------------------------------------------


def test_anonymous_deep_link_goes_to_login_with_next(client, sandbox):
    response = client.get(SEED_URL)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={SEED_URL}"
    assert api_calls(sandbox) == []


def test_login_round_trip_lands_on_the_lead(client, sales_user, sandbox):
    page = client.get(f"/accounts/login/?next={SEED_URL}")
    assert page.status_code == 200
    assert f'value="{SEED_URL}"' in page.content.decode()
    response = client.post(
        "/accounts/login/",
        {"username": "sam", "password": "correct-horse-42", "next": SEED_URL},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == SEED_URL
    assert response.status_code == 200
    assert "John Doe" in response.content.decode()


def test_off_site_next_is_ignored(client, sales_user):
    response = client.post(
        "/accounts/login/",
        {"username": "sam", "password": "correct-horse-42", "next": "https://evil.example/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_wrong_password_shows_the_form_again(client, sales_user):
    response = client.post("/accounts/login/", {"username": "sam", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_healthz_needs_no_login_and_no_api(client, sandbox):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert api_calls(sandbox) == []


# --- the detail page --------------------------------------------------------


def test_seed_lead_page_shows_the_whole_lead(sales_client, sandbox):
    response = sales_client.get(SEED_URL)
    assert response.status_code == 200
    html = response.content.decode()
    overdue_days = (timezone.localdate() - datetime.date(2024, 1, 20)).days
    for expected in [
        '<h1 id="lead-name" class="lead-name">John Doe</h1>',
        "status-contacted",
        "Contacted",
        "Tech Corp",
        "Marketing Manager",
        f"Overdue by {overdue_days} days",
        'href="mailto:john.doe@example.com"',
        'href="tel:+15551234567"',
        "website",
        "UTM source",
        "google",
        "UTM campaign",
        "spring_2024",
        '<li class="chip">product_a</li>',
        "Interested in premium package",
        "ws_your_workspace_id",
        "lead_1234567890abcdef",
        "Europe/London",
        "Fetched from PollyBot",
    ]:
        assert expected in html, expected
    # The seed's times, shown in the site's time zone with the zone named.
    assert "16 Jan 2024, 14:30 GMT" in html
    assert "15 Jan 2024, 10:30 GMT" in html
    assert api_calls(sandbox) == ["/api/v1/leads/lead_1234567890abcdef"]


def test_follow_up_is_a_calendar_date_in_the_site_time_zone(sales_client, sandbox, settings):
    settings.TIME_ZONE = "Pacific/Kiritimati"  # UTC+14: its date runs ahead of UTC's
    today = timezone.localdate()
    lead = dict(SEED_LEAD, id="lead_tz1", metadata={"follow_up_date": today.isoformat()})
    sandbox.app.set_leads([lead])
    response = sales_client.get("/leads/lead_tz1/")
    assert "Due today" in response.content.decode()


def test_other_metadata_is_shown_with_readable_labels(sales_client, sandbox):
    lead = dict(
        SEED_LEAD,
        id="lead_meta1",
        metadata={
            "lead_score": 87,
            "budget": "$10k-$25k",
            "newsletter_opt_in": True,
            "referrer": None,
            "website": "https://tech.example/about",
            "address": {"city": "Leeds", "postcode": "LS1 4AP"},
            "tags": ["vip", "q3"],
        },
    )
    sandbox.app.set_leads([lead])
    html = sales_client.get("/leads/lead_meta1/").content.decode()
    for expected in [
        "Lead score",
        "87",
        "Budget",
        "$10k-$25k",
        "Newsletter opt in",
        "Yes",
        "value-empty",
        'href="https://tech.example/about"',
        "Leeds",
        '<li class="chip"><span class="value-text">vip</span></li>',
    ]:
        assert expected in html, expected


def test_lead_with_nothing_but_an_id_still_renders(sales_client, sandbox):
    sandbox.app.set_leads([{"id": "lead_bare1"}])
    response = sales_client.get("/leads/lead_bare1/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "lead_bare1" in html
    assert "mailto:" not in html
    assert "tel:" not in html


HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def test_hostile_data_is_escaped_and_never_live(sales_client, sandbox):
    lead = {
        "id": "lead_hostile1",
        "name": HOSTILE,
        "email": 'javascript:alert(3)//"><script>x</script>@x.test',
        "phone": "javascript:alert(4)",
        "source": HOSTILE,
        "status": HOSTILE,
        "metadata": {
            "company": HOSTILE,
            "job_title": HOSTILE,
            "utm_source": "javascript:alert(5)",
            "interests": [HOSTILE],
            "notes": HOSTILE,
            "last_interaction": HOSTILE,
            "follow_up_date": HOSTILE,
            HOSTILE: HOSTILE,
            "homepage": "javascript:alert(6)",
            "nested": {HOSTILE: [HOSTILE, {"x": "javascript:alert(7)"}]},
            "data_url": "data:text/html,<script>alert(8)</script>",
        },
        "createdAt": HOSTILE,
        "updatedAt": HOSTILE,
        "workspaceId": HOSTILE,
    }
    sandbox.app.set_leads([lead])
    response = sales_client.get("/leads/lead_hostile1/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert 'href="javascript:' not in html
    assert 'href="data:' not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "status-other" in html


# --- error pages ------------------------------------------------------------


def test_unknown_lead_gets_the_friendly_not_found_page(sales_client, sandbox):
    response = sales_client.get("/leads/lead_nonexistent123/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "lead_nonexistent123" in html
    assert "No lead found with this ID in your workspace" in html
    for cause in ["doesn’t exist", "was deleted", "different workspace", "typo"]:
        assert cause in html
    assert 'name="q"' in html  # a lookup box: a way on
    assert api_calls(sandbox) == ["/api/v1/leads/lead_nonexistent123"]


@pytest.mark.parametrize(
    "path",
    [
        "/leads/invalid-id/",
        "/leads/lead_/",
        "/leads/lead_abc-123/",
        "/leads/LEAD_abc/",
        "/leads/lead_%C3%A4bc/",
        "/leads/lead_abc%0A/",
        "/leads/%3Cscript%3E/",
        "/leads/lead_" + "a" * 96 + "/",
    ],
)
def test_malformed_id_gets_the_invalid_id_page_and_no_call(sales_client, sandbox, path):
    response = sales_client.get(path)
    assert response.status_code == 400
    html = response.content.decode()
    assert "lead_[alphanumeric string]" in html
    assert "<script>" not in html
    assert api_calls(sandbox) == []


def test_upstream_invalid_id_answer_gets_the_invalid_id_page(sales_client, sandbox):
    sandbox.app.inject(
        status=400,
        body=(
            b'{"success": false, "error": "Invalid lead ID format", "code": "INVALID_ID_FORMAT",'
            b' "details": {"leadId": "lead_x1", "expected": "lead_[alphanumeric string]"}}'
        ),
        headers={"Content-Type": "application/json"},
    )
    response = sales_client.get("/leads/lead_x1/")
    assert response.status_code == 400


def test_no_connection_configured_is_503(sales_client, settings):
    settings.POLLYBOT_BASE_URL = ""
    settings.POLLYBOT_API_KEY = ""
    response = sales_client.get(SEED_URL)
    assert response.status_code == 503
    html = response.content.decode()
    assert "aren’t connected to PollyBot" in html
    assert "POLLYBOT_API_KEY" not in html  # sales staff are told what to do, not how to fix


def test_staff_are_told_how_to_fix_not_configured(staff_client, settings):
    settings.POLLYBOT_BASE_URL = ""
    settings.POLLYBOT_API_KEY = ""
    response = staff_client.get(SEED_URL)
    assert response.status_code == 503
    assert "POLLYBOT_API_KEY" in response.content.decode()


def test_refused_key_is_502_and_never_shows_the_key(sales_client, sandbox, settings):
    settings.POLLYBOT_API_KEY = "sk-workspace_" + "w" * 51
    response = sales_client.get(SEED_URL)
    assert response.status_code == 502
    html = response.content.decode()
    assert "refused this workspace’s key" in html
    assert "sk-workspace_" not in html
    assert len(api_calls(sandbox)) == 1  # a 401 is never retried


def test_rate_limited_is_503_with_retry_after(sales_client, sandbox):
    sandbox.app.inject(status=429, body=b"Too Many Requests", headers={"Retry-After": "120"})
    response = sales_client.get(SEED_URL)
    assert response.status_code == 503
    assert response["Retry-After"] == "120"
    retry_at = timezone.localtime() + datetime.timedelta(seconds=120)
    assert retry_at.strftime("%H:%M") in response.content.decode()


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_502(sales_client, sandbox, status):
    sandbox.app.inject(status=status, body=b"<html>oops</html>", times=5)
    response = sales_client.get(SEED_URL)
    assert response.status_code == 502
    html = response.content.decode()
    assert "PollyBot is not answering" in html
    assert "oops" not in html  # never the upstream's own body


def test_timeout_is_504(sales_client, sandbox):
    sandbox.app.inject(status=200, body=b"{}", delay=1.5, times=5)
    response = sales_client.get(SEED_URL)
    assert response.status_code == 504
    assert "took too long" in response.content.decode()


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Proxy login</body></html>",
        b"",
        b'{"leads": []}',
        b'{"success": false, "error": "nope"}',
    ],
)
def test_unexpected_answer_is_502(sales_client, sandbox, body):
    sandbox.app.inject(status=200, body=body, headers={"Content-Type": "text/html"})
    response = sales_client.get(SEED_URL)
    assert response.status_code == 502
    html = response.content.decode()
    assert "couldn’t read" in html
    assert "Proxy login" not in html


def test_unreachable_api_is_502(sales_client, settings):
    settings.POLLYBOT_BASE_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    settings.POLLYBOT_API_KEY = "sk-workspace_" + "u" * 51
    settings.POLLYBOT_BACKOFF_FACTOR = 0.0
    response = sales_client.get(SEED_URL)
    assert response.status_code == 502


# --- the lookup box ----------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "lead_1234567890abcdef",
        "  lead_1234567890abcdef  ",
        "https://leads.example.com/leads/lead_1234567890abcdef/",
        "Lead: lead_1234567890abcdef (John)",
    ],
)
def test_lookup_goes_to_the_lead(sales_client, query):
    response = sales_client.get("/leads/lookup/", {"q": query})
    assert response.status_code == 302
    assert response["Location"] == SEED_URL


@pytest.mark.parametrize("query", ["lead_abc-123", "lead-1234", "LEAD_", "lead_" + "a" * 120])
def test_lookup_of_a_malformed_id_gets_the_invalid_id_page(sales_client, sandbox, query):
    response = sales_client.get("/leads/lookup/", {"q": query})
    assert response.status_code == 400
    assert query[:100] in response.content.decode()
    assert api_calls(sandbox) == []


def test_empty_lookup_goes_to_the_list(sales_client):
    response = sales_client.get("/leads/lookup/", {"q": "  "})
    assert response.status_code == 302
    assert response["Location"] == "/leads/"


# --- the key stays on the server ---------------------------------------------


@pytest.mark.parametrize("refused", [False, True])
def test_the_key_never_reaches_a_log_record_or_the_page(
    sales_client, sandbox, settings, caplog, refused
):
    key = "sk-workspace_" + "k" * 51
    settings.POLLYBOT_API_KEY = key
    if not refused:
        sandbox.app.api_key = key
    with caplog.at_level("DEBUG"):
        response = sales_client.get(SEED_URL)
    assert response.status_code == (502 if refused else 200)
    assert key not in response.content.decode()
    assert "k" * 51 not in response.content.decode()
    assert caplog.records  # the call was logged...
    for record in caplog.records:  # ...and no record holds the key
        assert "k" * 51 not in record.getMessage()
        assert "k" * 51 not in repr(record.__dict__)


# --- exports ---------------------------------------------------------------------


def test_the_contact_card_downloads_and_parses(sales_client, sandbox):
    import vobject

    response = sales_client.get(f"/leads/{SEED_LEAD['id']}/contact.vcf")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/vcard; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="john-doe.vcf"'
    card = vobject.readOne(response.content.decode())
    assert card.fn.value == "John Doe"
    assert card.email.value == "john.doe@example.com"
    assert card.url.value == f"http://testserver/leads/{SEED_LEAD['id']}/"


def test_the_follow_up_downloads_as_an_all_day_event(sales_client, sandbox):
    import icalendar

    response = sales_client.get(f"/leads/{SEED_LEAD['id']}/follow-up.ics")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    calendar = icalendar.Calendar.from_ical(response.content)
    (event,) = calendar.walk("VEVENT")
    assert event.decoded("DTSTART") == datetime.date(2024, 1, 20)
    assert "John Doe" in str(event["SUMMARY"])


def test_no_follow_up_date_means_no_calendar_file(sales_client, sandbox):
    sandbox.app.set_leads([dict(SEED_LEAD, metadata={})])
    response = sales_client.get(f"/leads/{SEED_LEAD['id']}/follow-up.ics", follow=True)
    assert response.redirect_chain[-1][0] == SEED_URL
    assert "no follow-up date" in response.content.decode()


def test_the_page_offers_copy_buttons_and_calendar_links(sales_client, sandbox):
    html = sales_client.get(SEED_URL).content.decode()
    assert 'data-copy="john.doe@example.com"' in html
    assert 'data-copy="+1-555-123-4567"' in html
    assert f'data-copy="{SEED_LEAD["id"]}"' in html
    assert 'data-copy="http://testserver/leads/lead_1234567890abcdef/"' in html
    assert "https://calendar.google.com/calendar/render?" in html
    assert "https://outlook.live.com/calendar/0/deeplink/compose?" in html


def test_exports_of_a_malformed_id_make_no_call(sales_client, sandbox):
    assert sales_client.get("/leads/lead_bad-id/contact.vcf").status_code == 400
    assert sales_client.get("/leads/lead_bad-id/follow-up.ics").status_code == 400
    assert api_calls(sandbox) == []


# --- answers that cannot be shown as asked -------------------------------------------


def test_a_lead_without_its_id_is_an_unexpected_answer(sales_client, sandbox):
    sandbox.app.inject(
        status=200,
        body=b'{"success": true, "data": {"name": "No Id"}}',
        headers={"Content-Type": "application/json"},
    )
    response = sales_client.get(SEED_URL)
    assert response.status_code == 502
    assert "No Id" not in response.content.decode()


def test_list_items_without_a_usable_id_are_left_out(sales_client, sandbox):
    sandbox.app.set_leads(
        [
            dict(SEED_LEAD),
            dict(SEED_LEAD, id="", name="Empty Id"),
            dict(SEED_LEAD, id="a/b", name="Slash Id"),
        ]
    )
    response = sales_client.get("/leads/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "John Doe" in html
    assert "Empty Id" not in html
    assert "Slash Id" not in html


@pytest.mark.parametrize("path", ["/healthz", SEED_URL, "/leads/"])
def test_head_requests_are_answered(sales_client, sandbox, path):
    assert sales_client.head(path).status_code == 200


def test_an_invalid_action_form_for_a_bad_id_is_the_invalid_id_page(db, client, sandbox):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", "r@example.com", "pw-123456789")
    client.force_login(admin)
    response = client.post("/leads/lead_bad-id/status/", {"status": "nonsense"})
    assert response.status_code == 400
    assert "lead_[alphanumeric string]" in response.content.decode()
    assert api_calls(sandbox) == []
