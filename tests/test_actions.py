"""Acting on a lead from its page (issue 9), against the stand-in API over real HTTP.

Every action is checked end to end: the form on the page, the POST, the
sandbox's state afterwards (`leads_snapshot()`), the requests PollyBot saw,
the audit row and what the page shows after the redirect.
"""

from __future__ import annotations

import datetime
import json
import re

import pytest
import requests
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from leads.models import LeadChange
from sandbox.data import DEMO_API_KEY, SEED_LEAD

pytestmark = pytest.mark.django_db

LEAD_ID = SEED_LEAD["id"]
LEAD_URL = f"/leads/{LEAD_ID}/"
LEAD_API_PATH = f"/api/v1/leads/{LEAD_ID}"
SEEN = SEED_LEAD["updatedAt"]  # the version the page showed
STATUS_URL = f"{LEAD_URL}status/"
FOLLOW_UP_URL = f"{LEAD_URL}follow-up/"
NOTES_URL = f"{LEAD_URL}notes/"


def lead_now(sandbox, lead_id: str = LEAD_ID) -> dict:
    return next(lead for lead in sandbox.app.leads_snapshot() if lead["id"] == lead_id)


def calls(sandbox, path: str = LEAD_API_PATH) -> list[str]:
    return [r.method for r in sandbox.app.requests if r.path == path]


def edit_upstream(sandbox, changes: dict) -> dict:
    """Someone else's edit, made through PollyBot's API (not through this site)."""
    response = requests.put(
        f"{sandbox.base_url}{LEAD_API_PATH}",
        json=changes,
        headers={"Authorization": f"Bearer {DEMO_API_KEY}"},
        timeout=5,
    )
    response.raise_for_status()
    return response.json()["data"]


def fail_next_put(sandbox, **fault) -> None:
    """Let the site's check (a GET) through with the lead as it is, then fail the PUT.

    Sandbox faults match by path only, and a GET and a PUT share the lead's
    path: the first fault answers the GET with the real lead, the second the PUT.
    """
    body = json.dumps({"success": True, "data": lead_now(sandbox)})
    sandbox.app.inject(
        status=200,
        body=body,
        headers={"Content-Type": "application/json"},
        path_contains=LEAD_API_PATH,
    )
    sandbox.app.inject(path_contains=LEAD_API_PATH, **fault)


# --- permissions, CSRF ------------------------------------------------------------


def test_the_sales_group_holds_the_change_permission():
    group = Group.objects.get(name="Sales")
    assert list(group.permissions.values_list("content_type__app_label", "codename")) == [
        ("leads", "change_lead")
    ]


def test_a_permitted_user_sees_the_three_forms_with_the_version_seen(seller_client, sandbox):
    html = seller_client.get(LEAD_URL).content.decode()
    assert "Update this lead" in html
    for action in (STATUS_URL, FOLLOW_UP_URL, NOTES_URL):
        assert f'action="{action}"' in html
    assert html.count('name="csrfmiddlewaretoken"') >= 3
    assert html.count(f'name="updated_at" value="{SEEN}"') == 3
    for value, label in [("new", "New"), ("follow_up", "Follow-up"), ("lost", "Lost")]:
        assert f'<option value="{value}"' in html and f">{label}</option>" in html
    assert '<option value="contacted" selected>Contacted</option>' in html
    assert 'value="2024-01-20"' in html  # the current follow-up date, ready to change
    # Each form has its own element IDs, and every field a visible label.
    for label in [
        'for="status_status"',
        'for="status_follow_up_date"',
        'for="followup_follow_up_date"',
        'for="note_note"',
    ]:
        assert label in html
    assert "Changed here" in html


def test_a_user_without_the_permission_sees_the_page_read_only(sales_client, sandbox):
    html = sales_client.get(LEAD_URL).content.decode()
    assert "John Doe" in html
    assert "Update this lead" not in html
    for action in (STATUS_URL, FOLLOW_UP_URL, NOTES_URL):
        assert action not in html
    assert "Changed here" in html  # the record of changes is for everyone to read


@pytest.mark.parametrize(
    ("url", "data"),
    [
        (STATUS_URL, {"status": "lost", "updated_at": SEEN}),
        (FOLLOW_UP_URL, {"follow_up_date": "2030-01-01", "updated_at": SEEN}),
        (FOLLOW_UP_URL, {"clear": "1", "updated_at": SEEN}),
        (NOTES_URL, {"note": "forged", "updated_at": SEEN}),
    ],
)
def test_a_forged_post_without_the_permission_is_refused(sales_client, sandbox, url, data):
    before = sandbox.app.leads_snapshot()
    response = sales_client.post(url, data)
    assert response.status_code == 403
    assert sandbox.app.requests == []  # not even the check
    assert sandbox.app.leads_snapshot() == before
    assert not LeadChange.objects.exists()


def test_a_post_without_the_csrf_token_is_refused(seller, sandbox):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(seller)
    response = strict.post(STATUS_URL, {"status": "lost", "updated_at": SEEN})
    assert response.status_code == 403
    assert sandbox.app.requests == []
    assert lead_now(sandbox)["status"] == "contacted"


def test_anonymous_posts_go_to_the_login_page(client, sandbox):
    response = client.post(STATUS_URL, {"status": "lost", "updated_at": SEEN})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert sandbox.app.requests == []


def test_a_malformed_lead_id_makes_no_call(seller_client, sandbox):
    response = seller_client.post("/leads/lead_bad-id/status/", {"status": "lost"})
    assert response.status_code == 400
    assert sandbox.app.requests == []


def test_actions_are_post_only(seller_client, sandbox):
    assert seller_client.get(STATUS_URL).status_code == 405


# --- each action, end to end ---------------------------------------------------------


def test_status_change_puts_the_status_only_and_caches_the_answer(seller_client, sandbox, seller):
    seller_client.get(LEAD_URL)
    response = seller_client.post(STATUS_URL, {"status": "qualified", "updated_at": SEEN})
    assert response.status_code == 302
    assert response["Location"] == LEAD_URL
    after = lead_now(sandbox)
    assert after["status"] == "qualified"
    assert after["metadata"] == SEED_LEAD["metadata"]  # nothing else touched
    assert after["updatedAt"] != SEEN
    # The page load, the check before the PUT, the PUT: never a retry.
    assert calls(sandbox) == ["GET", "GET", "PUT"]

    page = seller_client.get(LEAD_URL)
    html = page.content.decode()
    assert "Status changed to Qualified." in html
    assert "status-qualified" in html
    assert calls(sandbox) == ["GET", "GET", "PUT"]  # the PUT's answer is the cached copy
    assert f'name="updated_at" value="{after["updatedAt"]}"' in html

    (change,) = LeadChange.objects.all()
    assert change.user == seller
    assert change.user_name == "Sam Seller"
    assert change.lead_id == LEAD_ID
    assert change.fields == ["status"]
    assert change.before == {"status": "contacted"}
    assert change.after == {"status": "qualified"}
    assert abs(timezone.now() - change.changed_at) < datetime.timedelta(minutes=1)
    assert "Status: Contacted → Qualified" in html
    assert "Sam Seller" in html


def test_follow_up_status_sends_the_date_in_the_same_put(seller_client, sandbox):
    response = seller_client.post(
        STATUS_URL,
        {"status": "follow_up", "follow_up_date": "2030-03-04", "updated_at": SEEN},
    )
    assert response.status_code == 302
    after = lead_now(sandbox)
    assert after["status"] == "follow_up"
    assert after["metadata"]["follow_up_date"] == "2030-03-04"
    assert calls(sandbox).count("PUT") == 1
    (change,) = LeadChange.objects.all()
    assert change.fields == ["status", "metadata.follow_up_date"]
    assert change.before == {"status": "contacted", "metadata.follow_up_date": "2024-01-20"}
    assert change.after == {"status": "follow_up", "metadata.follow_up_date": "2030-03-04"}
    html = seller_client.get(LEAD_URL).content.decode()
    assert "Status changed to Follow-up, follow-up on Mon 4 Mar 2030." in html


def test_follow_up_status_without_a_date_asks_for_one(seller_client, sandbox):
    response = seller_client.post(
        STATUS_URL, {"status": "follow_up", "follow_up_date": "", "updated_at": SEEN}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Choose the follow-up date for the Follow-up status." in html
    assert '<option value="follow_up" selected>' in html  # the choice is kept
    assert "PUT" not in calls(sandbox)
    assert lead_now(sandbox)["status"] == "contacted"


@pytest.mark.parametrize(
    ("data", "expected_date", "message"),
    [
        ({"follow_up_date": "2030-05-06"}, "2030-05-06", "Follow-up date set to Mon 6 May 2030."),
        ({"clear": "1", "follow_up_date": ""}, None, "Follow-up date cleared."),
        # Clear wins over a date typed in the same form.
        ({"clear": "1", "follow_up_date": "2030-05-06"}, None, "Follow-up date cleared."),
    ],
)
def test_follow_up_date_set_change_or_clear(seller_client, sandbox, data, expected_date, message):
    response = seller_client.post(FOLLOW_UP_URL, {**data, "updated_at": SEEN})
    assert response.status_code == 302
    metadata = lead_now(sandbox)["metadata"]
    assert metadata.get("follow_up_date") == expected_date
    assert ("follow_up_date" in metadata) is (expected_date is not None)  # null clears it
    assert metadata["notes"] == SEED_LEAD["metadata"]["notes"]  # merged, not replaced
    assert calls(sandbox).count("PUT") == 1
    html = seller_client.get(LEAD_URL).content.decode()
    assert message in html
    assert "is in the past" not in html
    (change,) = LeadChange.objects.all()
    assert change.after == {"metadata.follow_up_date": expected_date}


def test_a_past_follow_up_date_is_saved_with_a_warning(seller_client, sandbox):
    past = timezone.localdate() - datetime.timedelta(days=3)
    response = seller_client.post(
        FOLLOW_UP_URL, {"follow_up_date": past.isoformat(), "updated_at": SEEN}, follow=True
    )
    assert lead_now(sandbox)["metadata"]["follow_up_date"] == past.isoformat()
    html = response.content.decode()
    assert "is in the past: the lead shows as overdue." in html
    assert "Overdue by 3 days" in html


def test_no_date_and_no_clear_is_a_form_error(seller_client, sandbox):
    response = seller_client.post(FOLLOW_UP_URL, {"follow_up_date": "", "updated_at": SEEN})
    assert response.status_code == 400
    assert "Choose a date, or use “Clear follow-up date”." in response.content.decode()
    assert "PUT" not in calls(sandbox)


def test_a_change_upstream_already_has_sends_nothing(seller_client, sandbox):
    response = seller_client.post(
        STATUS_URL, {"status": "contacted", "updated_at": SEEN}, follow=True
    )
    assert "nothing was changed" in response.content.decode()
    assert "PUT" not in calls(sandbox)
    assert not LeadChange.objects.exists()


NOTE_STAMP = re.compile(
    r"\[(\d{4}-\d{2}-\d{2} \d{2}:\d{2}), Sam Seller\] Called back, wants a demo"
)


@pytest.mark.parametrize(
    ("existing", "prefix"),
    [
        ("Interested in premium package", "Interested in premium package\n\n"),
        (None, ""),  # no notes yet: the entry alone
        ("   ", ""),
    ],
)
def test_a_note_is_appended_dated_and_signed(seller_client, sandbox, existing, prefix):
    metadata = dict(SEED_LEAD["metadata"], notes=existing)
    sandbox.app.set_leads([dict(SEED_LEAD, metadata=metadata)])
    before = timezone.localtime()
    response = seller_client.post(
        NOTES_URL, {"note": "  Called back, wants a demo  ", "updated_at": SEEN}
    )
    assert response.status_code == 302
    notes = lead_now(sandbox)["metadata"]["notes"]
    assert notes.startswith(prefix)
    match = NOTE_STAMP.fullmatch(notes[len(prefix) :])
    assert match is not None, notes
    stamp = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M")
    # Stamped in the site's time zone (Europe/London in tests), to the minute.
    assert before.replace(second=0, microsecond=0, tzinfo=None) <= stamp
    assert stamp <= timezone.localtime().replace(tzinfo=None)
    html = seller_client.get(LEAD_URL).content.decode()
    assert "Note added." in html
    assert 'Added a note: <span class="value-text">[' in html
    (change,) = LeadChange.objects.all()
    assert change.fields == ["metadata.notes"]
    assert change.after == {"metadata.notes": notes}


def test_notes_that_are_not_text_are_never_overwritten(seller_client, sandbox):
    metadata = dict(SEED_LEAD["metadata"], notes={"call": "Tuesday"})
    sandbox.app.set_leads([dict(SEED_LEAD, metadata=metadata)])
    response = seller_client.post(NOTES_URL, {"note": "Hello", "updated_at": SEEN})
    assert response.status_code == 409
    assert "not plain text" in response.content.decode()
    assert lead_now(sandbox)["metadata"]["notes"] == {"call": "Tuesday"}
    assert "PUT" not in calls(sandbox)


# --- conflicts ---------------------------------------------------------------------


def test_a_status_change_after_an_upstream_edit_asks_first(seller_client, sandbox):
    seller_client.get(LEAD_URL)  # the user opens the page...
    newer = edit_upstream(
        sandbox, {"status": "lost", "phone": "+44 20 7946 0000"}
    )  # ...someone edits
    response = seller_client.post(STATUS_URL, {"status": "qualified", "updated_at": SEEN})
    assert response.status_code == 409
    html = response.content.decode()
    assert "PollyBot has a newer version of this lead." in html
    assert "Status</span>: Contacted → Lost" in html
    assert "Phone</span>: +1-555-123-4567 → +44 20 7946 0000" in html
    assert "Save anyway" in html
    assert f'name="updated_at" value="{newer["updatedAt"]}"' in html
    assert 'name="confirm_overwrite" value="1"' in html
    assert '<option value="qualified" selected>' in html  # the user's choice is kept
    assert lead_now(sandbox)["status"] == "lost"  # nothing overwritten
    assert calls(sandbox).count("PUT") == 1  # only the other person's edit
    assert not LeadChange.objects.exists()

    # "Save anyway": the same choice, against the version now shown.
    response = seller_client.post(
        STATUS_URL,
        {"status": "qualified", "updated_at": newer["updatedAt"], "confirm_overwrite": "1"},
    )
    assert response.status_code == 302
    after = lead_now(sandbox)
    assert after["status"] == "qualified"
    assert after["phone"] == "+44 20 7946 0000"  # their edit of another field survives
    (change,) = LeadChange.objects.all()
    assert change.before == {"status": "lost"}


def test_a_note_after_an_upstream_note_edit_is_added_to_the_new_notes(seller_client, sandbox):
    seller_client.get(LEAD_URL)
    theirs = "Interested in premium package\n\n[2026-01-01 09:00, Kim] Sent the quote"
    newer = edit_upstream(sandbox, {"metadata": {"notes": theirs}})
    response = seller_client.post(NOTES_URL, {"note": "Booked the demo", "updated_at": SEEN})
    assert response.status_code == 409
    html = response.content.decode()
    assert "PollyBot has a newer version of this lead." in html
    assert "Notes</span>:" in html
    assert "nothing anyone wrote is replaced" in html
    assert ">\nBooked the demo</textarea>" in html  # the note is kept
    assert "Add my note after the current notes" in html
    assert lead_now(sandbox)["metadata"]["notes"] == theirs

    response = seller_client.post(
        NOTES_URL,
        {"note": "Booked the demo", "updated_at": newer["updatedAt"], "confirm_overwrite": "1"},
    )
    assert response.status_code == 302
    notes = lead_now(sandbox)["metadata"]["notes"]
    assert notes.startswith(theirs + "\n\n[")  # theirs kept whole, ours after it
    assert notes.endswith(", Sam Seller] Booked the demo")


def test_a_second_upstream_edit_asks_again(seller_client, sandbox):
    seller_client.get(LEAD_URL)
    first = edit_upstream(sandbox, {"status": "lost"})
    assert seller_client.post(STATUS_URL, {"status": "new", "updated_at": SEEN}).status_code == 409
    edit_upstream(sandbox, {"status": "converted"})
    response = seller_client.post(
        STATUS_URL, {"status": "new", "updated_at": first["updatedAt"], "confirm_overwrite": "1"}
    )
    assert response.status_code == 409
    assert "Status</span>: Lost → Converted" in response.content.decode()
    assert lead_now(sandbox)["status"] == "converted"


def test_a_conflict_without_the_earlier_copy_still_refuses(seller_client, sandbox):
    seller_client.get(LEAD_URL)
    edit_upstream(sandbox, {"status": "lost"})
    cache.clear()  # the copy the page was built from is gone (evicted, another instance)
    response = seller_client.post(
        FOLLOW_UP_URL, {"follow_up_date": "2030-01-01", "updated_at": SEEN}
    )
    assert response.status_code == 409
    assert "can’t tell which fields changed" in response.content.decode()
    assert lead_now(sandbox)["metadata"]["follow_up_date"] == "2024-01-20"


# --- upstream failures -----------------------------------------------------------------

NOTE = "Spoke to John <b>today</b>: call back Friday"


@pytest.mark.parametrize(
    ("fault", "status", "message"),
    [
        ({"status": 503, "body": b"<html>upstream-page</html>"}, 502, "PollyBot is not answering"),
        ({"status": 500, "body": b""}, 502, "PollyBot is not answering"),
        (
            {"status": 401, "body": b'{"success": false, "error": "x", "code": "INVALID_API_KEY"}'},
            502,
            "PollyBot refused the workspace’s key",
        ),
        ({"status": 429, "body": b"", "headers": {"Retry-After": "120"}}, 503, "used up"),
        ({"status": 200, "body": b"{}", "delay": 1.5}, 504, "did not answer in time"),
        ({"status": 200, "body": b"<html>upstream-page</html>"}, 502, "unexpected answer"),
    ],
)
def test_a_failed_put_keeps_the_note_and_is_sent_once(
    seller_client, sandbox, fault, status, message
):
    seller_client.get(LEAD_URL)
    sandbox.app.reset_log()
    fail_next_put(sandbox, **fault)
    response = seller_client.post(NOTES_URL, {"note": NOTE, "updated_at": SEEN})
    assert response.status_code == status
    html = response.content.decode()
    assert message in html
    assert 'role="alert"' in html
    # The note comes back in the textarea, escaped, ready to send again.
    assert ">\nSpoke to John &lt;b&gt;today&lt;/b&gt;: call back Friday</textarea>" in html
    assert "upstream-page" not in html  # never the upstream’s own body
    assert calls(sandbox) == ["GET", "PUT"]  # exactly one PUT attempt, never retried
    assert lead_now(sandbox)["metadata"]["notes"] == SEED_LEAD["metadata"]["notes"]
    assert not LeadChange.objects.exists()
    if status == 503:
        assert response["Retry-After"] == "120"


def test_a_failed_put_keeps_the_status_choice(seller_client, sandbox):
    fail_next_put(sandbox, status=503)
    response = seller_client.post(
        STATUS_URL, {"status": "follow_up", "follow_up_date": "2030-02-03", "updated_at": SEEN}
    )
    assert response.status_code == 502
    html = response.content.decode()
    assert '<option value="follow_up" selected>' in html
    assert 'value="2030-02-03"' in html
    assert calls(sandbox).count("PUT") == 1
    assert lead_now(sandbox)["status"] == "contacted"


def test_when_the_check_fails_nothing_is_sent(seller_client, sandbox):
    seller_client.get(LEAD_URL)
    sandbox.app.reset_log()
    sandbox.app.inject(status=503, path_contains=LEAD_API_PATH, times=5)
    response = seller_client.post(NOTES_URL, {"note": NOTE, "updated_at": SEEN})
    assert response.status_code == 502
    html = response.content.decode()
    assert "PollyBot is not answering" in html
    assert "call back Friday</textarea>" in html
    assert "PUT" not in calls(sandbox)
    assert lead_now(sandbox)["metadata"]["notes"] == SEED_LEAD["metadata"]["notes"]


# --- the audit record in the admin ------------------------------------------------------


def test_the_audit_record_is_read_only_in_the_admin(
    client, sandbox, seller_client, django_user_model
):
    seller_client.post(STATUS_URL, {"status": "lost", "updated_at": SEEN})
    change = LeadChange.objects.get()
    admin = django_user_model.objects.create_superuser(username="root", password="x-long-pass-42")
    client.force_login(admin)
    assert client.get("/admin/leads/leadchange/").status_code == 200
    page = client.get(f"/admin/leads/leadchange/{change.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.get("/admin/leads/leadchange/add/").status_code == 403


def test_permission_can_be_given_directly(sales_client, sales_user, sandbox):
    sales_user.user_permissions.add(Permission.objects.get(codename="change_lead"))
    response = sales_client.post(STATUS_URL, {"status": "lost", "updated_at": SEEN})
    assert response.status_code == 302
    assert lead_now(sandbox)["status"] == "lost"
