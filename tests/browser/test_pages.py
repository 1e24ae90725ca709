"""Logging in from a deep link, the styles and script loading, and every error page."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    PASSWORD,
    SEED_ID,
    SEED_PATH,
    USERNAME,
    assert_accessible,
    log_in,
)

WRONG_KEY = "sk-workspace_" + "w" * 51


def test_a_deep_link_goes_through_the_login_form_and_back_to_the_lead(
    new_context, sandbox, user, live_server
):
    page = new_context().new_page()
    page.goto(SEED_PATH)
    assert "/accounts/login/" in page.url
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    expect(page.get_by_text("Log in to open the page you asked for.")).to_be_visible()
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(live_server.url + SEED_PATH)
    expect(page.get_by_role("heading", level=1)).to_have_text("John Doe")
    expect(page.get_by_text(SEED_ID, exact=True)).to_be_visible()


def test_the_stylesheet_and_the_script_load(open_page):
    page = open_page()
    badge = page.locator(".lead-summary .badge")
    # The "contacted" badge is purple on a tinted pill: the browser default is black on
    # nothing, so these hold only when site.css (by its hashed name) was served.
    assert badge.evaluate("el => getComputedStyle(el).color") == "rgb(106, 63, 181)"
    assert badge.evaluate("el => getComputedStyle(el).borderTopLeftRadius") == "999px"
    # site.js unhides the copy buttons: they are visible only when it ran.
    expect(page.get_by_role("button", name="Copy lead ID")).to_be_visible()


def _invalid_id(sandbox, settings) -> str:
    return "/leads/invalid-id/"


def _not_found(sandbox, settings) -> str:
    return "/leads/lead_nonexistent123/"


def _not_configured(sandbox, settings) -> str:
    settings.POLLYBOT_BASE_URL = ""
    settings.POLLYBOT_API_KEY = ""
    return SEED_PATH


def _key_refused(sandbox, settings) -> str:
    settings.POLLYBOT_API_KEY = WRONG_KEY
    return SEED_PATH


def _rate_limited(sandbox, settings) -> str:
    sandbox.app.inject(status=429, body=b"Too Many Requests", headers={"Retry-After": "120"})
    return SEED_PATH


def _unavailable(sandbox, settings) -> str:
    sandbox.app.inject(status=503, body=b"<html>oops</html>", times=5)
    return SEED_PATH


def _timed_out(sandbox, settings) -> str:
    # Longer than the read timeout the sandbox fixture sets (0.5 s).
    sandbox.app.inject(status=200, body=b"{}", delay=1.5, times=5)
    return SEED_PATH


def _unexpected_answer(sandbox, settings) -> str:
    sandbox.app.inject(
        status=200, body=b"<html>Proxy login</html>", headers={"Content-Type": "text/html"}
    )
    return SEED_PATH


# name -> (how to cause it, the status, the page's heading)
ERROR_CASES: dict[str, tuple[Callable[..., str], int, str]] = {
    "invalid id": (_invalid_id, 400, "That isn’t a lead ID"),
    "not found": (_not_found, 404, "We couldn’t find that lead"),
    "not configured": (_not_configured, 503, "Leads aren’t connected to PollyBot yet"),
    "key refused": (_key_refused, 502, "PollyBot refused this workspace’s key"),
    "rate limited": (_rate_limited, 503, "Too many lead lookups this hour"),
    "unavailable": (_unavailable, 502, "PollyBot is not answering"),
    "timed out": (_timed_out, 504, "PollyBot is not answering"),
    "unexpected answer": (_unexpected_answer, 502, "PollyBot sent an answer we couldn’t read"),
}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_each_error_page_renders_with_its_heading_and_the_lookup_box(
    case, new_context, sandbox, settings, user
):
    cause, status, heading = ERROR_CASES[case]
    path = cause(sandbox, settings)
    page = new_context().new_page()
    answer = log_in(page, path=path)
    assert answer.status == status
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    lookup = page.locator("main").get_by_role("searchbox", name="Find a lead")
    expect(lookup).to_be_visible()
    assert_accessible(page)  # axe, light and dark: here, to render each error page once
    # The box works: it leads on to the seed lead.
    settings.POLLYBOT_API_KEY = sandbox.app.api_key
    settings.POLLYBOT_BASE_URL = sandbox.base_url
    lookup.fill(SEED_ID)
    lookup.press("Enter")
    page.wait_for_url(f"**{SEED_PATH}")
