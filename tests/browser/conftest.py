"""Browser tests: the real site (pytest-django's live server) and the stand-in API over
HTTP, driven by Debian's headless Chromium through Playwright.

Playwright never downloads a browser here: it launches /usr/bin/chromium. CI installs
it (`.ci/run`); elsewhere these tests are skipped when it is missing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from pytest_django.live_server_helper import LiveServer

# Playwright's sync API runs an event loop in the test thread, and Django refuses ORM
# calls from a thread with a running loop unless told that this is deliberate.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Response,
    sync_playwright,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
# How long any one Playwright wait may take: pages here answer in milliseconds, so a
# wait this long means a real failure, reported quickly rather than after 30 s.
ACTION_TIMEOUT_MS = 5_000

SEED_ID = "lead_1234567890abcdef"
SEED_PATH = f"/leads/{SEED_ID}/"
USERNAME = "sam"
PASSWORD = "correct-horse-42"
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 800}

# A lead no sales team should ever meet, but the API may send: long unbroken strings,
# markup, deep and wide metadata, an unknown status. Its page must still fit a phone.
HOSTILE_ID = "lead_hostile0000000001"
HOSTILE_PATH = f"/leads/{HOSTILE_ID}/"
_LONG = "x" * 300
_DEPTH = 8  # nested metadata objects, deeper than anything PollyBot documents


def _nested(depth: int) -> dict[str, Any]:
    if depth == 0:
        return {"leaf": "https://example.com/" + "a" * 200}
    return {f"level_{depth}_{'k' * 40}": _nested(depth - 1), "sibling": [_LONG, depth]}


HOSTILE_LEAD: dict[str, Any] = {
    "id": HOSTILE_ID,
    "name": "<script>alert(1)</script>" + "N" * 200,
    "email": "a" * 120 + "@" + "b" * 120 + ".example",
    "phone": "+1" + "5" * 60,
    "source": "s" * 250,
    "status": "escalated_to_legal_" + "q" * 80,
    "metadata": {
        "utm_source": "https://tracker.example/?q=" + "z" * 300,
        "utm_campaign": _LONG,
        "interests": ["i" * 150, "<b>bold</b>", *[f"interest {n}" for n in range(30)]],
        "company": "C" * 200,
        "job_title": "J" * 200,
        "notes": ("line " * 50 + "\n") * 5 + _LONG,
        "follow_up_date": "not-a-date-" + "d" * 100,
        "last_interaction": "yesterday-ish " + "t" * 100,
        "deep": _nested(_DEPTH),
        "k" * 200: "a key as long as a value",
        "table": [{"col": n, "wide": _LONG} for n in range(3)],
    },
    "createdAt": "2024-01-15T10:30:00.000Z",
    "updatedAt": "2024-01-16T14:30:00.000Z",
    "workspaceId": "ws_" + "w" * 200,
}

AXE_SOURCE = Path(__file__).with_name("vendor").joinpath("axe.min.js")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


def _no_static_handler(application: Any) -> Any:
    return application


@pytest.fixture(scope="session")
def live_server(request) -> Iterator[LiveServer]:
    """pytest-django's live server, with the static files served as in production.

    Its usual static handler looks files up by their source names through the finders,
    but pages link WhiteNoise's hashed names (collected once by tests/conftest.py), so
    every stylesheet and script would be a 404: here the request reaches WhiteNoise's
    middleware instead, which serves STATIC_ROOT exactly as it does in production.
    """
    addr = (
        request.config.getvalue("liveserver")
        or os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS")
        or "localhost"
    )
    server = LiveServer(addr, start=False)
    server.thread.static_handler = _no_static_handler
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    # Every test logs in through the form; the production hasher costs ~0.3 s a time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def user(transactional_db, fast_password_hashing):
    return get_user_model().objects.create_user(username=USERNAME, password=PASSWORD)


@pytest.fixture
def new_context(browser, live_server) -> Iterator[Callable[..., BrowserContext]]:
    """Make a browser context on the live server (closed after the test)."""
    made: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        options.setdefault("viewport", DESKTOP)
        context = browser.new_context(base_url=live_server.url, **options)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


def log_in(page: Page, *, path: str = SEED_PATH) -> Response:
    """Open ``path``, be sent to the login form, log in, and land back on ``path``.

    Returns the answer to the page's own request after the login (its status).
    """
    page.goto(path)
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    with page.expect_response(
        lambda response: (
            response.request.method == "GET"
            and response.request.is_navigation_request()
            and response.url.endswith(path)
        )
    ) as answer:
        page.click("main button[type=submit]")
    page.wait_for_load_state()
    return answer.value


@pytest.fixture
def open_page(new_context, sandbox, user) -> Callable[..., Page]:
    """A logged-in page at ``path``, in a new context made with ``options``."""

    def open_(path: str = SEED_PATH, **options: Any) -> Page:
        page = new_context(**options).new_page()
        log_in(page, path=path)
        return page

    return open_


@pytest.fixture
def hostile_lead(sandbox) -> str:
    """The hostile lead added to the sandbox's workspace; its page's path."""
    sandbox.app.set_leads([*sandbox.app.leads_snapshot(), HOSTILE_LEAD])
    return HOSTILE_PATH


def api_calls(sandbox, lead_id: str = SEED_ID) -> int:
    """How many times the sandbox was asked for this lead."""
    return sum(1 for request in sandbox.app.requests if request.path.endswith("/" + lead_id))


def run_axe(
    page: Page, *, rules: dict[str, dict[str, bool]] | None = None, setup: str | None = None
) -> list[dict]:
    """axe-core's violations on the page as it is now.

    ``setup`` is a function (as JavaScript) run before, to configure axe's checks.
    """
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol, so the site's CSP does not apply.
        page.evaluate(AXE_SOURCE.read_text(encoding="utf-8"))
    if setup:
        page.evaluate(setup)
    result = page.evaluate(
        "options => axe.run(document, options)",
        {"rules": rules or {}, "resultTypes": ["violations"]},
    )
    return result["violations"]


# The touch-target size this site promises (Apple's and WCAG 2.5.5 AAA's 44 px).
TOUCH_TARGET_PX = 44
TOUCH_TARGETS = f"""
() => axe.configure({{
  checks: [{{ id: "target-size", options: {{ minSize: {TOUCH_TARGET_PX} }} }}],
  rules: [{{ id: "target-size", any: ["target-size"] }}],
}})
"""


def assert_accessible(page: Page) -> None:
    """No violation in light mode, nor in dark mode."""
    found = []
    for scheme in ["light", "dark"]:
        page.emulate_media(color_scheme=scheme)
        violations = run_axe(page, rules={"target-size": {"enabled": True}}, setup=TOUCH_TARGETS)
        if violations:
            found.append(f"in {scheme} mode:\n{describe(violations)}")
    assert not found, "\n".join(found)


def describe(violations: list[dict]) -> str:
    """A readable summary of axe's violations for an assertion message."""
    lines = []
    for violation in violations:
        targets = [", ".join(node["target"]) for node in violation["nodes"][:5]]
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']} — {targets}")
        for node in violation["nodes"][:3]:
            lines.append("    " + node.get("failureSummary", "").replace("\n", " "))
    return "\n".join(lines)
