"""Security properties of the whole site, checked from the outside.

Open redirects after log-in, hostile lead data (Hypothesis), CSRF on every POST,
security headers, no inline script or style, session lifetime, log-in
throttling (django-axes), friendly 404/500 pages, and a sweep proving the
workspace key never reaches a page, a header or a log record.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.cached_db import SessionStore
from django.test import Client, RequestFactory
from django.views.defaults import server_error
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from leads import services
from leads.middleware import IDLE_RENEW_INTERVAL, LAST_SEEN, LOGIN_STARTED
from leads.models import Workspace
from sandbox.data import DEMO_API_KEY, SEED_LEAD
from tests import faults

pytestmark = pytest.mark.django_db

SEED_URL = f"/leads/{SEED_LEAD['id']}/"
MISSING_URL = "/leads/lead_doesnotexist1/"
INVALID_URL = "/leads/not-a-lead-id/"
LOGIN_URL = "/accounts/login/"
# A page for logged-in users only that calls nothing upstream (400: not an ID):
# answers 400 when the session is valid, a redirect to the log-in page otherwise.
PROBE_URL = INVALID_URL
PROBE_OK = 400
LOGOUT_URL = "/accounts/logout/"
PASSWORD = "correct-horse-42"  # the conftest users' password
TEMPLATES_DIR = Path(django_settings.BASE_DIR) / "templates"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    """A cheap hasher: these tests log in with real POSTs dozens of times, and the
    default PBKDF2 costs ~0.3 s per check. Autouse, so it applies before the
    conftest users are created."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_client(client):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    client.force_login(admin)
    return client


def save_workspace(*, base_url: str, api_key: str) -> Workspace:
    workspace = Workspace(name="Acme sales", base_url=base_url)
    workspace.set_api_key(api_key)
    workspace.save()
    return workspace


def login(client: Client, *, username: str = "sam", password: str = PASSWORD, **extra: str):
    return client.post(LOGIN_URL, {"username": username, "password": password, **extra})


def is_logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


# --- open redirects after log-in -------------------------------------------------

# Django's own list of unsafe redirect targets (tests/utils_tests/test_http.py,
# URLHasAllowedHostAndSchemeTests.test_bad_urls), with evil.com for the
# attacker's host, and a few more of the classic bypasses.
BAD_NEXT = [
    "http://evil.com",
    "http:///evil.com",
    "https://evil.com",
    "ftp://evil.com",
    r"\\evil.com",
    r"\\\evil.com",
    r"/\\/evil.com",
    r"\\//evil.com",
    r"/\/evil.com",
    r"\/evil.com",
    r"/\evil.com",
    r"http:/\//evil.com",
    r"http:\/evil.com",
    r"http:/\evil.com",
    'javascript:alert("XSS")',
    "javascript:alert(1)",
    "\njavascript:alert(x)",
    "java\nscript:alert(x)",
    "\x08//evil.com",
    r"http://otherserver\@evil.com",
    r"http:\\testserver\@evil.com",
    r"http://testserver\me:pass@evil.com",
    r"http://testserver\@evil.com",
    r"http:\\testserver\confirm\me@evil.com",
    "http:999999999",
    "ftp:9999999999",
    "\n",
    "http://[2001:cdba:0000:0000:0000:0000:3257:9652/",
    "http://2001:cdba:0000:0000:0000:0000:3257:9652]/",
    "//evil.com",
    "///evil.com",
    "http:evil.com",
    "//example.com@evil.com",
    "\nhttps://evil.com",
    "\thttps://evil.com",
    "\t//evil.com",
    " //evil.com",
    "https:evil.com",
    "//evil.com/%2F..",
    "//testserver@evil.com",
    "https://testserver.evil.com/",
]


@pytest.mark.parametrize("bad_next", BAD_NEXT)
def test_a_bad_next_lands_on_the_start_page(client, sales_user, bad_next):
    response = login(client, next=bad_next)
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert is_logged_in(client)


def test_a_good_next_is_followed(client, sales_user):
    # The control: the same log-in honours a path on this site.
    response = login(client, next=SEED_URL)
    assert response.status_code == 302
    assert response["Location"] == SEED_URL


# --- hostile lead data (Hypothesis) ----------------------------------------------

# Every hostile string holds this marker; it may reach the page only escaped.
MARKER = "<x-injected"
HOSTILE_TEMPLATES = [
    "<x-injected>",
    "<x-injected><script>alert(1)</script>",
    '"><x-injected img src=x onerror=alert(1)>',
    "'><x-injected/onload=alert(1)>",
    "javascript:alert(1)//<x-injected>",
    "https://example.com/<x-injected>",
    "https://example.com/\"><x-injected onmouseover='alert(1)'>",
    "mailto:a@b.c?<x-injected>",
    "</dd></dl><x-injected><style>*{display:none}</style>",
    "{{ <x-injected }}{% now 'Y' %}",
    "\u202e<x-injected>\u0000\ufeff",
    "<x-injected>@example.com",
    "+1 555 <x-injected>",
    "2024-01-20<x-injected>",
]
# Bounds that keep one example well under the client's 1 MiB response cap.
MAX_TEXT = 40
MAX_REPEAT = 2000
MAX_CHILDREN = 3
MAX_DEPTH = 5
HYPOTHESIS_EXAMPLES = 500

_plain_text = st.text(max_size=MAX_TEXT)
_hostile = st.builds(
    lambda before, template, after: before + template + after,
    _plain_text,
    st.sampled_from(HOSTILE_TEMPLATES),
    _plain_text,
)
_huge = st.builds(lambda text, times: text * times, _hostile, st.integers(1, MAX_REPEAT))
_scalars = st.one_of(
    _hostile,
    _plain_text,
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**30, max_value=10**40),
    st.floats(),  # NaN and infinities included: json.loads accepts them
)
_keys = st.one_of(_plain_text, _hostile, st.sampled_from(["company", "notes", "utm_source"]))


def _nested(depth: int) -> st.SearchStrategy[Any]:
    """JSON values nested at most `depth` containers deep."""
    if depth == 0:
        return _scalars
    child = _nested(depth - 1)
    return st.one_of(
        _scalars,
        st.lists(child, max_size=MAX_CHILDREN),
        st.dictionaries(_keys, child, max_size=MAX_CHILDREN),
    )


_values = _nested(MAX_DEPTH)
_top_values = st.one_of(_values, _huge)
_metadata = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "company": _top_values,
            "job_title": _values,
            "interests": _values,
            "notes": _top_values,
            "last_interaction": _values,
            "follow_up_date": _values,
            "utm_source": _values,
            "utm_campaign": _values,
            "website": _values,
        },
    ).flatmap(
        lambda known: st.dictionaries(_keys, _values, max_size=MAX_CHILDREN).map(
            lambda extra: {**extra, **known}
        )
    ),
    _values,  # metadata itself of the wrong type
)
_lead_documents = st.fixed_dictionaries(
    {},
    optional={
        "name": _top_values,
        "email": _values,
        "phone": _values,
        "source": _values,
        "status": _values,
        "metadata": _metadata,
        "createdAt": _values,
        "updatedAt": _values,
        "workspaceId": _values,
    },
)


def test_hostile_lead_documents_render_escaped(sales_client, sandbox):
    # The inner @given function uses the test's fixtures: one sandbox and one
    # logged-in client for all examples, each example under a fresh lead ID so
    # the cache never answers with an earlier one.
    counter = itertools.count()

    @hypothesis_settings(
        max_examples=HYPOTHESIS_EXAMPLES,
        deadline=None,
        database=None,  # no .hypothesis directory in the tree
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(document=_lead_documents)
    def check(document: dict[str, Any]) -> None:
        lead_id = f"lead_{next(counter)}"
        sandbox.app.set_leads([{**document, "id": lead_id}])
        response = sales_client.get(f"/leads/{lead_id}/")
        assert response.status_code == 200
        html = response.content.decode()
        assert MARKER not in html
        assert not re.search(r"""href\s*=\s*["']?\s*javascript:""", html, re.IGNORECASE)
        name = document.get("name")
        if isinstance(name, str) and MARKER in name and name.strip():
            assert "&lt;x-injected" in html  # shown, escaped: not dropped

    check()
    assert next(counter) >= HYPOTHESIS_EXAMPLES  # every example really asked for a page


# --- CSRF ------------------------------------------------------------------------------


@pytest.fixture
def strict_client() -> Client:
    return Client(enforce_csrf_checks=True)


def test_login_post_without_a_token_is_refused(strict_client, sales_user):
    response = login(strict_client)
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
    assert not is_logged_in(strict_client)


def test_logout_post_without_a_token_is_refused(strict_client, sales_user):
    strict_client.force_login(sales_user)
    response = strict_client.post(LOGOUT_URL)
    assert response.status_code == 403
    assert is_logged_in(strict_client)
    assert strict_client.get(PROBE_URL).status_code == PROBE_OK


def test_refresh_post_without_a_token_is_refused_and_calls_nothing(
    strict_client, sales_user, sandbox
):
    strict_client.force_login(sales_user)
    response = strict_client.post(f"{SEED_URL}refresh/")
    assert response.status_code == 403
    assert sandbox.app.requests == []


def test_admin_posts_without_a_token_are_refused(strict_client, sandbox):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    strict_client.force_login(admin)
    save_workspace(base_url=sandbox.base_url, api_key=DEMO_API_KEY)
    sandbox.app.reset_log()

    response = strict_client.post("/admin/leads/workspace/1/test-connection/")
    assert response.status_code == 403
    assert sandbox.app.requests == []

    forged = {"name": "Forged", "base_url": "https://evil.example", "api_key": "sk-workspace_x"}
    response = strict_client.post("/admin/leads/workspace/1/change/", forged)
    assert response.status_code == 403
    workspace = Workspace.objects.get()
    assert (workspace.name, workspace.base_url, workspace.version) == (
        "Acme sales",
        sandbox.base_url,
        1,
    )
    assert workspace.api_key == DEMO_API_KEY
    assert sandbox.app.requests == []


def test_a_post_with_the_token_goes_through(strict_client, sales_user, sandbox):
    # The control for the refusals above: the same client, with its token, is let in.
    strict_client.get(LOGIN_URL)
    token = strict_client.cookies[django_settings.CSRF_COOKIE_NAME].value
    response = login(strict_client, csrfmiddlewaretoken=token)
    assert response.status_code == 302
    assert is_logged_in(strict_client)


# --- security headers ----------------------------------------------------------------

CSP_DIRECTIVES = [
    "default-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
]
FIXED_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
# page -> (URL, logged in, status, a lead page that must never be cached)
HEADER_PAGES = {
    "detail": (SEED_URL, True, 200, True),
    "not-found-lead": (MISSING_URL, True, 404, True),
    "invalid-id": (INVALID_URL, True, 400, True),
    "login": (LOGIN_URL, False, 200, False),
    "no-such-page": ("/no/such/page/", True, 404, False),
}
HSTS = "max-age=31536000; includeSubDomains; preload"
HSTS_SECONDS = 31536000


@pytest.mark.parametrize("secure", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("page", list(HEADER_PAGES))
def test_security_headers(client, sales_user, sandbox, settings, page, secure):
    url, logged_in, status, lead_page = HEADER_PAGES[page]
    settings.SECURE_HSTS_SECONDS = HSTS_SECONDS
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    if logged_in:
        client.force_login(sales_user)
    response = client.get(url, secure=secure)
    assert response.status_code == status
    csp = response["Content-Security-Policy"]
    directives = [part.strip() for part in csp.split(";")]
    for directive in CSP_DIRECTIVES:
        assert directive in directives
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    for name, value in FIXED_HEADERS.items():
        assert response[name] == value, name
    if lead_page:
        assert "no-store" in response["Cache-Control"]
    assert response["X-Request-ID"]
    if secure:
        assert response["Strict-Transport-Security"] == HSTS
    else:
        assert "Strict-Transport-Security" not in response  # never over plain HTTP


# --- no inline script or style ---------------------------------------------------------

INLINE_PATTERNS = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc\s*=)[^>]*>", re.IGNORECASE),
    "style element": re.compile(r"<style\b", re.IGNORECASE),
    "style attribute": re.compile(r"\sstyle\s*=", re.IGNORECASE),
    "event handler": re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),
    "javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
}
TEMPLATE_FILES = sorted(p for p in TEMPLATES_DIR.rglob("*") if p.is_file())


def test_the_template_scan_sees_the_templates():
    names = {p.relative_to(TEMPLATES_DIR).as_posix() for p in TEMPLATE_FILES}
    assert {"base.html", "leads/detail.html", "registration/login.html", "500.html"} <= names


@pytest.mark.parametrize(
    "path", TEMPLATE_FILES, ids=[p.relative_to(TEMPLATES_DIR).as_posix() for p in TEMPLATE_FILES]
)
def test_no_inline_script_or_style_in_templates(path):
    text = path.read_text(encoding="utf-8")
    found = {name: pattern.findall(text) for name, pattern in INLINE_PATTERNS.items()}
    assert {name: hits for name, hits in found.items() if hits} == {}


@pytest.mark.parametrize(
    ("snippet", "kind"),
    [
        ("<script>alert(1)</script>", "inline script"),
        ('<script type="module">x()</script>', "inline script"),
        ("<style>p{}</style>", "style element"),
        ('<p style="color:red">', "style attribute"),
        ('<img src=x onerror="alert(1)">', "event handler"),
        ("<body onload=go()>", "event handler"),
    ],
)
def test_the_inline_scan_catches_inline_code(snippet, kind):
    assert INLINE_PATTERNS[kind].search(snippet)


def test_the_inline_scan_allows_external_scripts():
    assert not INLINE_PATTERNS["inline script"].search('<script src="/static/app.js"></script>')


# --- sessions --------------------------------------------------------------------------


def _session_key(client: Client) -> str:
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


def _client_with_cookie(session_key: str) -> Client:
    other = Client()
    other.cookies[django_settings.SESSION_COOKIE_NAME] = session_key
    return other


def _is_login_redirect(response, path: str) -> bool:
    return response.status_code == 302 and response["Location"].startswith(
        f"{LOGIN_URL}?next={path}"
    )


def test_login_gives_a_new_session_key(client, sales_user):
    planted = client.session  # an anonymous session, as an attacker could plant it
    planted["planted"] = True
    planted.save()
    before = planted.session_key
    assert login(client).status_code == 302
    after = _session_key(client)
    assert after != before
    assert not SessionStore().exists(before)
    assert _is_login_redirect(_client_with_cookie(before).get(PROBE_URL), PROBE_URL)
    assert _client_with_cookie(after).get(PROBE_URL).status_code == PROBE_OK


def test_a_logged_out_cookie_is_refused(client, sales_user):
    assert login(client).status_code == 302
    old = _session_key(client)
    assert _client_with_cookie(old).get(PROBE_URL).status_code == PROBE_OK
    response = client.post(LOGOUT_URL)
    assert (response.status_code, response["Location"]) == (302, LOGIN_URL)
    assert _is_login_redirect(_client_with_cookie(old).get(PROBE_URL), PROBE_URL)


def test_a_deactivated_user_is_logged_out_on_the_next_request(sales_client, sales_user):
    assert sales_client.get(PROBE_URL).status_code == PROBE_OK
    sales_user.is_active = False
    sales_user.save()
    assert _is_login_redirect(sales_client.get(SEED_URL), SEED_URL)


# The idle timeout under test, in seconds: long enough for a log-in and a first
# page, short enough to wait out.
SHORT_IDLE = 1
IDLE_WAIT = 1.5


def test_the_idle_timeout_ends_the_session(client, sales_user, settings):
    settings.SESSION_COOKIE_AGE = SHORT_IDLE
    assert login(client).status_code == 302
    assert client.get(PROBE_URL).status_code == PROBE_OK
    time.sleep(IDLE_WAIT)
    assert _is_login_redirect(client.get(PROBE_URL), PROBE_URL)


def test_activity_renews_the_idle_timeout(client, sales_user):
    assert login(client).status_code == 302
    key = _session_key(client)
    store = SessionStore(session_key=key)
    assert store.get_expiry_age() == django_settings.SESSION_COOKIE_AGE
    # As if the last renewal were just over a minute ago.
    seen = time.time() - IDLE_RENEW_INTERVAL - 1
    store[LAST_SEEN] = seen
    store.save()
    assert client.get(PROBE_URL).status_code == PROBE_OK
    renewed = SessionStore(session_key=key)
    assert renewed[LAST_SEEN] > seen + IDLE_RENEW_INTERVAL
    # Within the minute, no write: the value stays as it was.
    assert client.get(PROBE_URL).status_code == PROBE_OK
    assert SessionStore(session_key=key)[LAST_SEEN] == renewed[LAST_SEEN]


def test_the_absolute_lifetime_ends_an_active_session(client, sales_user, settings):
    assert login(client).status_code == 302
    key = _session_key(client)
    store = SessionStore(session_key=key)
    assert isinstance(store[LOGIN_STARTED], float)
    store[LOGIN_STARTED] = time.time() - settings.SESSION_MAX_AGE - 1
    store.save()
    assert _is_login_redirect(client.get(SEED_URL), SEED_URL)
    assert not SessionStore().exists(key)  # flushed on the server, not just forgotten
    assert _is_login_redirect(_client_with_cookie(key).get(PROBE_URL), PROBE_URL)


def test_a_zero_absolute_lifetime_ends_the_session_at_once(client, sales_user, settings):
    assert login(client).status_code == 302
    settings.SESSION_MAX_AGE = 0
    time.sleep(0.01)  # time.time() moves on past the log-in instant
    assert _is_login_redirect(client.get(PROBE_URL), PROBE_URL)


def test_a_session_without_a_login_time_is_ended(client, sales_user):
    # force_login skips the user_logged_in signal's request: no start time recorded.
    client.force_login(sales_user)
    store = SessionStore(session_key=_session_key(client))
    store.pop(LOGIN_STARTED, None)
    store.save()
    assert _is_login_redirect(client.get(PROBE_URL), PROBE_URL)


# --- log-in throttling (django-axes) -----------------------------------------------------

FAILURE_LIMIT = 10  # settings.AXES_FAILURE_LIMIT
LOCKED_STATUS = 429
LOCKED_TEXT = "Too many failed log-ins"
WRONG_FORM_TEXT = "Please enter a correct username and password"


def _fail(client: Client, username: str, times: int) -> list:
    return [login(client, username=username, password="wrong-password") for _ in range(times)]


def test_the_failure_limit_is_the_documented_one():
    assert django_settings.AXES_FAILURE_LIMIT == FAILURE_LIMIT


def test_ten_failures_lock_the_username_even_for_the_right_password(client, sales_user, staff_user):
    failures = _fail(client, "sam", FAILURE_LIMIT - 1)
    for response in failures:
        assert response.status_code == 200
        assert WRONG_FORM_TEXT in response.content.decode()
    tenth = _fail(client, "sam", 1)[0]
    assert tenth.status_code == LOCKED_STATUS

    response = login(client, username="sam", password=PASSWORD)
    assert response.status_code == LOCKED_STATUS
    assert LOCKED_TEXT in response.content.decode()
    assert not is_logged_in(client)

    # Another user, from the same address, logs in meanwhile.
    other = Client()
    response = login(other, username="ada", password=PASSWORD)
    assert response.status_code == 302
    assert is_logged_in(other)


def test_nine_failures_then_the_right_password_logs_in(client, sales_user):
    _fail(client, "sam", FAILURE_LIMIT - 1)
    assert login(client).status_code == 302
    assert is_logged_in(client)


def test_an_unknown_username_gets_the_same_lockout(client, sales_user):
    _fail(client, "sam", FAILURE_LIMIT)
    known = login(client, username="sam", password=PASSWORD)
    _fail(client, "nobody-here", FAILURE_LIMIT)
    unknown = login(client, username="nobody-here", password=PASSWORD)
    assert unknown.status_code == known.status_code == LOCKED_STATUS
    assert LOCKED_TEXT in unknown.content.decode()
    assert unknown.content == known.content
    assert unknown.get("Retry-After") == known.get("Retry-After")


# --- friendly error pages --------------------------------------------------------------

LEAK_HINTS = ["Traceback", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "settings.py", 'File "']


def test_an_unknown_url_gives_the_friendly_404(sales_client):
    response = sales_client.get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Page not found" in html
    for hint in LEAK_HINTS:
        assert hint not in html


def test_the_500_template_shows_no_internals():
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong" in html
    for hint in LEAK_HINTS:
        assert hint not in html


def test_a_crashing_view_gives_the_friendly_500(sales_user, monkeypatch, caplog):
    def crash(**kwargs: Any) -> None:
        raise RuntimeError("boom: internal detail " + django_settings.SECRET_KEY)

    monkeypatch.setattr(services, "get_lead", crash)
    client = Client(raise_request_exception=False)
    client.force_login(sales_user)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.get(SEED_URL)
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong" in html
    for hint in [*LEAK_HINTS, "boom", django_settings.SECRET_KEY]:
        assert hint not in html
    assert response["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Request-ID"]
    assert any(r.name == "django.request" and r.levelno == logging.ERROR for r in caplog.records)


# --- the key never leaks ------------------------------------------------------------------

KEY_PREFIX = "sk-workspace_"
SWEEP_KEY = KEY_PREFIX + "SWEEP".ljust(51, "7")
SWEEP_SECRET = SWEEP_KEY.removeprefix(KEY_PREFIX)
SWEEP_MARKERS = (SWEEP_KEY, SWEEP_SECRET)


@pytest.fixture
def all_logs(caplog, monkeypatch):
    """Every record at DEBUG from every logger; "leads" is made to propagate to caplog."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="leads")
    monkeypatch.setattr(logging.getLogger("leads"), "propagate", True)
    return caplog


def _exposed(response) -> list[str]:
    return [
        response.content.decode(errors="replace"),
        *(f"{name}: {value}" for name, value in response.items()),
        str(response.cookies),
        *(str(location) for location, _ in getattr(response, "redirect_chain", [])),
    ]


def _assert_nothing_leaked(responses: dict[str, Any], records: list[logging.LogRecord]) -> None:
    formatter = logging.Formatter()
    for name, response in responses.items():
        for text in _exposed(response):
            for marker in SWEEP_MARKERS:
                assert marker not in text, name
    assert records
    for record in records:
        texts = [record.getMessage(), repr(record.__dict__)]
        if record.exc_info:
            texts.append(formatter.formatException(record.exc_info))
        for text in texts:
            for marker in SWEEP_MARKERS:
                assert marker not in text, record.name


def test_the_key_is_on_no_page_header_or_log_line(client, sales_user, sandbox, settings, all_logs):
    sandbox.app.api_key = SWEEP_KEY
    settings.POLLYBOT_API_KEY = SWEEP_KEY
    settings.POLLYBOT_ALLOW_HTTP_LOCALHOST = True
    responses: dict[str, Any] = {}

    anonymous = Client()
    responses["login"] = anonymous.get(LOGIN_URL)
    responses["login-post"] = login(anonymous, follow=True)

    sales = Client()
    sales.force_login(sales_user)
    responses["home"] = sales.get("/", follow=True)  # wherever the start page leads
    responses["detail"] = sales.get(SEED_URL)
    responses["not-found"] = sales.get(MISSING_URL)
    responses["invalid-id"] = sales.get(INVALID_URL)
    responses["lookup"] = sales.get("/leads/lookup/", {"q": SEED_LEAD["id"]}, follow=True)
    responses["refresh"] = sales.post(f"{SEED_URL}refresh/", follow=True)
    responses["no-such-page"] = sales.get("/no/such/page/")
    responses["logout"] = sales.post(LOGOUT_URL)

    admin = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    client.force_login(admin)
    responses["admin-index"] = client.get("/admin/")
    save_workspace(base_url=sandbox.base_url, api_key=SWEEP_KEY)
    responses["workspace-change"] = client.get("/admin/leads/workspace/1/change/")
    responses["test-connection"] = client.post(
        "/admin/leads/workspace/1/test-connection/", follow=True
    )
    assert "Connected to PollyBot" in responses["test-connection"].content.decode()
    responses["detail-via-workspace"] = client.get(SEED_URL)

    for name in ["home", "detail", "workspace-change", "admin-index", "detail-via-workspace"]:
        assert responses[name].status_code == 200, name
    # The key really was in use: every call carried it.
    assert sandbox.app.requests
    assert {r.authorization for r in sandbox.app.requests} == {f"Bearer {SWEEP_KEY}"}
    _assert_nothing_leaked(responses, all_logs.records)


def _echo_key(status: int) -> faults.Behaviour:
    """A hostile upstream that sends the key it was given back, in headers and body."""

    def behaviour(conn, request, stop) -> None:
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        body = (
            '{"success": false, "error": "bad key ' + key + '", "code": "INVALID_API_KEY",'
            ' "details": {"key": "' + key + '", "secret": "' + key.removeprefix(KEY_PREFIX) + '"}}'
        ).encode()
        headers = {"Content-Type": "application/json", "X-Request-ID": key}
        conn.sendall(faults.response(status, body, headers))

    return behaviour


SWEEP_FAULTS = {
    "hang": lambda: faults.hang(30),
    "trickle-body": lambda: faults.trickle(interval=0.2, head=False),
    "reset": faults.reset,
    "http-500": lambda: faults.answer(500, b"<h1>oops</h1>", {"Content-Type": "text/html"}),
    "http-502": lambda: faults.answer(502, b"<h1>bad gateway</h1>"),
    "200-html": lambda: faults.answer(200, b"<html></html>", {"Content-Type": "text/html"}),
    "200-truncated": lambda: faults.truncated(declared=5000, body=b'{"success": true'),
    "429": lambda: faults.answer(429, b"slow down", {"Retry-After": "120"}),
    "401-envelope": lambda: faults.answer(
        401, b'{"success": false, "error": "Invalid API key", "code": "INVALID_API_KEY"}'
    ),
    "401-echoing-the-key": lambda: _echo_key(401),
    "404-echoing-the-key": lambda: _echo_key(404),
    "500-echoing-the-key": lambda: _echo_key(500),
}


@pytest.fixture
def fault_upstream(settings) -> Iterator[faults.FaultServer]:
    with faults.FaultServer(faults.healthy(api_key=SWEEP_KEY)) as server:
        settings.POLLYBOT_BASE_URL = server.url
        settings.POLLYBOT_API_KEY = SWEEP_KEY
        settings.POLLYBOT_CONNECT_TIMEOUT = 0.5
        settings.POLLYBOT_READ_TIMEOUT = 0.3
        settings.POLLYBOT_CALL_DEADLINE = 0.6
        settings.POLLYBOT_BACKOFF_FACTOR = 0.0
        yield server


@pytest.mark.parametrize("fault", list(SWEEP_FAULTS))
def test_the_key_leaks_from_no_upstream_fault(
    sales_client, admin_client_for_faults, fault_upstream, all_logs, fault
):
    fault_upstream.behaviour = SWEEP_FAULTS[fault]()
    responses = {
        "detail": sales_client.get(SEED_URL),
        "refresh": sales_client.post(f"{SEED_URL}refresh/", follow=True),
        "test-connection": admin_client_for_faults.post(
            "/admin/leads/workspace/1/test-connection/", follow=True
        ),
    }
    assert responses["detail"].status_code >= 400
    assert fault_upstream.requests  # the fault was really met
    assert all(
        r.headers.get("authorization") == f"Bearer {SWEEP_KEY}" for r in fault_upstream.requests
    )
    _assert_nothing_leaked(responses, all_logs.records)


@pytest.fixture
def admin_client_for_faults(fault_upstream, settings):
    settings.POLLYBOT_ALLOW_HTTP_LOCALHOST = True
    save_workspace(base_url=fault_upstream.url, api_key=SWEEP_KEY)
    admin = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    other = Client()
    other.force_login(admin)
    return other


# --- even DEBUG's technical error page never shows the key ---------------------------------


def test_debugs_error_page_shows_frames_but_no_key(sales_user, monkeypatch, settings):
    settings.DEBUG = True

    def crash(**kwargs: Any) -> None:
        api_key = SWEEP_KEY  # noqa: F841 (a local the page would list)
        headers = {"Authorization": f"Bearer {SWEEP_KEY}"}  # noqa: F841
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "get_lead", crash)
    client = Client(raise_request_exception=False)
    client.force_login(sales_user)
    html = client.get(SEED_URL).content.decode()
    assert "RuntimeError" in html and "Local vars" in html  # Django's technical page
    assert "sk-workspace_[redacted]" in html
    for marker in SWEEP_MARKERS:
        assert marker not in html


def test_debugs_error_page_hides_a_posted_key(monkeypatch, settings):
    from leads.admin import WorkspaceAdmin

    settings.DEBUG = True

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(WorkspaceAdmin, "save_model", crash)
    admin = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    client = Client(raise_request_exception=False)
    client.force_login(admin)
    response = client.post(
        "/admin/leads/workspace/add/",
        {"name": "W", "base_url": "https://pollybot.example.com", "api_key": SWEEP_KEY},
    )
    html = response.content.decode()
    assert response.status_code == 500
    assert "RuntimeError" in html and "api_key" in html
    for marker in SWEEP_MARKERS:
        assert marker not in html
