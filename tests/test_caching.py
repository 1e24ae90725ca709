"""Caching, single-flight, stale-if-error and the rate budget, against the sandbox over HTTP."""

from __future__ import annotations

import os
import threading

import pytest
from django.core.cache import cache
from django.db import connections
from django.test import Client

from leads import freshness, services
from sandbox.data import SEED_LEAD

SEED_ID = SEED_LEAD["id"]
SEED_URL = f"/leads/{SEED_ID}/"
STALE_NOTICE = "Could not refresh from PollyBot; showing the copy from"

pytestmark = pytest.mark.django_db


def calls(sandbox, lead_id: str = SEED_ID) -> int:
    return sum(1 for r in sandbox.app.requests if r.path == f"/api/v1/leads/{lead_id}")


def make_stale(settings) -> None:
    settings.POLLYBOT_CACHE_TTL = 0  # every cached copy is now past its freshness window


# --- freshness ------------------------------------------------------------------


def test_a_second_view_within_the_window_makes_no_call(sales_client, sandbox):
    first = sales_client.get(SEED_URL)
    second = sales_client.get(SEED_URL)
    assert first.status_code == second.status_code == 200
    assert calls(sandbox) == 1
    assert "Fetched from PollyBot" in second.content.decode()
    assert STALE_NOTICE not in second.content.decode()


def test_past_the_window_the_lead_is_fetched_again(sales_client, sandbox, settings):
    sales_client.get(SEED_URL)
    make_stale(settings)
    sandbox.app.set_leads([dict(SEED_LEAD, name="Jonathan Doe")])
    html = sales_client.get(SEED_URL).content.decode()
    assert "Jonathan Doe" in html
    assert calls(sandbox) == 2


# --- stale-if-error ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (503, b"<html>down</html>", {}),
        (500, b"", {}),
        (200, b"<html>captive portal</html>", {"Content-Type": "text/html"}),
        (429, b"slow down", {"Retry-After": "120"}),
    ],
)
def test_a_stale_copy_beats_the_error_page(sales_client, sandbox, settings, status, body, headers):
    sales_client.get(SEED_URL)
    make_stale(settings)
    sandbox.app.inject(status=status, body=body, headers=headers, times=5)
    response = sales_client.get(SEED_URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert STALE_NOTICE in html
    assert "John Doe" in html
    assert "Retry-After" not in response


def test_a_refused_key_never_shows_the_stale_copy(sales_client, sandbox, settings):
    sales_client.get(SEED_URL)
    make_stale(settings)
    sandbox.app.api_key = "sk-workspace_" + "r" * 51  # access revoked
    response = sales_client.get(SEED_URL)
    assert response.status_code == 502
    assert "John Doe" not in response.content.decode()


def test_after_a_refused_key_no_stale_copy_is_shown_until_a_call_succeeds(
    sales_client, sandbox, settings
):
    other = "/leads/lead_c36017fb92054e86/"
    sales_client.get(SEED_URL)
    sales_client.get(other)
    make_stale(settings)
    good_key = sandbox.app.api_key
    sandbox.app.api_key = "sk-workspace_" + "r" * 51
    assert sales_client.get(SEED_URL).status_code == 502
    sandbox.app.inject(status=503, times=5)  # then PollyBot goes down
    response = sales_client.get(other)
    assert response.status_code == 502
    assert "Priya Raman" not in response.content.decode()
    sandbox.app.api_key = good_key  # access restored: stale copies are allowed again
    assert sales_client.get("/leads/lead_007ed7b0b8e143ae/").status_code == 200
    sandbox.app.inject(status=503, times=5)
    assert STALE_NOTICE in sales_client.get(other).content.decode()


def test_a_deleted_lead_is_not_found_and_its_copy_is_dropped(sales_client, sandbox, settings):
    sales_client.get(SEED_URL)
    make_stale(settings)
    sandbox.app.set_leads([])
    assert sales_client.get(SEED_URL).status_code == 404
    cache.delete(f"leadsite:{services.get_connection().namespace}:notfound:{SEED_ID}")
    sandbox.app.inject(status=503, times=5)  # PollyBot down: still no old copy of a deleted lead
    assert sales_client.get(SEED_URL).status_code == 502


def test_a_recent_failure_is_not_retried_at_once(sales_client, sandbox):
    sandbox.app.inject(status=503, times=10)
    assert sales_client.get(SEED_URL).status_code == 502
    attempts = calls(sandbox)
    assert sales_client.get(SEED_URL).status_code == 502
    assert calls(sandbox) == attempts  # the failure is remembered for a few seconds


# --- not found ------------------------------------------------------------------------


def test_a_not_found_answer_is_remembered(sales_client, sandbox):
    for _ in range(5):
        assert sales_client.get("/leads/lead_nosuchlead1/").status_code == 404
    assert calls(sandbox, "lead_nosuchlead1") == 1


# --- the rate budget ----------------------------------------------------------------------


def test_after_a_429_no_call_is_made_until_retry_after(sales_client, sandbox):
    sandbox.app.inject(status=429, body=b"", headers={"Retry-After": "120"})
    first = sales_client.get(SEED_URL)
    assert first.status_code == 503
    assert first["Retry-After"] == "120"
    sandbox.app.reset_log()
    # Any lead, any user: the quiet period is the workspace's.
    second = sales_client.get("/leads/lead_c36017fb92054e86/")
    assert second.status_code == 503
    assert 100 <= int(second["Retry-After"]) <= 120
    assert sandbox.app.requests == []


def test_the_budget_is_shared_and_shown_to_staff(sales_client, sandbox, settings):
    from django.contrib.auth import get_user_model

    sales_client.get(SEED_URL)
    budget = freshness.get_budget(services.get_connection())
    assert budget is not None
    assert (budget.limit, budget.remaining) == (1000, 999)
    admin = get_user_model().objects.create_superuser("root", "r@example.com", "pw-123456789")
    from leads.models import Workspace
    from sandbox.data import DEMO_API_KEY

    workspace = Workspace(name="W", base_url=sandbox.base_url)
    workspace.set_api_key(DEMO_API_KEY)
    workspace.save()
    sales_client.get("/leads/lead_c36017fb92054e86/")  # one call under the saved workspace
    staff = Client()
    staff.force_login(admin)
    page = staff.get("/admin/leads/workspace/1/change/").content.decode()
    assert "998 of 1,000 calls left" in page


def test_with_few_calls_left_cached_copies_are_served_instead_of_refreshed(
    sales_client, sandbox, settings
):
    sandbox.app.rate_limit = 3
    for lead_id in [SEED_ID, "lead_c36017fb92054e86", "lead_007ed7b0b8e143ae"]:
        assert sales_client.get(f"/leads/{lead_id}/").status_code == 200
    make_stale(settings)  # 0 of 3 left now: under 5%
    sandbox.app.reset_log()
    response = sales_client.get(SEED_URL)
    assert response.status_code == 200
    assert "Few PollyBot calls are left this hour" in response.content.decode()
    assert sandbox.app.requests == []


# --- refresh --------------------------------------------------------------------------------


def test_refresh_fetches_now_and_at_most_once_per_lead_every_10_seconds(sales_client, sandbox):
    sales_client.get(SEED_URL)
    sandbox.app.set_leads([dict(SEED_LEAD, name="Refreshed Doe")])
    response = sales_client.post(f"/leads/{SEED_ID}/refresh/", follow=True)
    assert response.redirect_chain[-1][0] == SEED_URL
    assert "Refreshed Doe" in response.content.decode()
    assert calls(sandbox) == 2

    other_user = Client()
    other_user.force_login(response.wsgi_request.user)
    again = other_user.post(f"/leads/{SEED_ID}/refresh/", follow=True)
    assert "refreshed from PollyBot moments ago" in again.content.decode()
    assert calls(sandbox) == 2


def test_refresh_needs_a_csrf_token(sales_user, sandbox):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(sales_user)
    assert browser.post(f"/leads/{SEED_ID}/refresh/").status_code == 403
    assert sandbox.app.requests == []


def test_refresh_of_a_malformed_id_makes_no_call(sales_client, sandbox):
    assert sales_client.post("/leads/lead_bad-id/refresh/").status_code == 400
    assert sandbox.app.requests == []


def test_refresh_is_post_only(sales_client, sandbox):
    assert sales_client.get(f"/leads/{SEED_ID}/refresh/").status_code == 405


# --- single-flight ---------------------------------------------------------------------------

CACHE_BACKENDS = [
    pytest.param(
        {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "sf"},
        id="local-memory",
    ),
    pytest.param(
        {
            "BACKEND": "leads.cache.RedisCache",  # what settings.py makes of a redis:// URL
            "LOCATION": os.environ.get("CACHE_URL", ""),
            "KEY_PREFIX": "test-single-flight",
        },
        id="redis",
        marks=pytest.mark.skipif(
            not os.environ.get("CACHE_URL", "").startswith("redis://"),
            reason="needs CACHE_URL=redis://… (set by .ci/run)",
        ),
    ),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend", CACHE_BACKENDS)
def test_twenty_concurrent_views_make_one_call(sandbox, settings, sales_user, backend):
    settings.CACHES = {**settings.CACHES, "default": backend}
    # Room for 20 threads on 2 busy cores: a timeout here would be the machine, not the rule.
    settings.POLLYBOT_READ_TIMEOUT = 3.0
    settings.POLLYBOT_CALL_DEADLINE = 5.0
    cache.clear()
    # A slow upstream: every view arrives while the first call is out.
    sandbox.app.latency = 0.3
    barrier = threading.Barrier(20)
    results: list[tuple[int, str]] = []
    login = Client()
    login.force_login(sales_user)  # one session, written once: the threads only read it

    def view() -> None:
        browser = Client()
        browser.cookies = login.cookies
        barrier.wait()
        try:
            response = browser.get(SEED_URL)
            results.append((response.status_code, response.content.decode()))
        finally:
            connections.close_all()  # this thread's database connection

    threads = [threading.Thread(target=view) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 20
    assert all(status == 200 and "John Doe" in html for status, html in results)
    assert calls(sandbox) == 1
    cache.clear()


@pytest.mark.django_db(transaction=True)
def test_waiters_take_over_when_the_leader_dies(sandbox, sales_client):
    connection = services.get_connection()
    # A leader took the lock and died: its lock expires after one second.
    cache.add(f"leadsite:{connection.namespace}:lock:{SEED_ID}", "dead-leader", 1)
    response = sales_client.get(SEED_URL)
    assert response.status_code == 200
    assert calls(sandbox) == 1
