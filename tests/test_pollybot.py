"""Tests of leads/pollybot.py: the PollyBot HTTP client and its typed errors.

HTTP is faked at the boundary: `responses` on exact URLs for the status and
envelope mappings, and tiny socket servers on 127.0.0.1 where real urllib3
behaviour matters (retries, deadlines, trickling bodies, gzip).
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import json
import logging
import pickle
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import responses
import urllib3.exceptions
from responses import matchers

from leads import pollybot
from leads.pollybot import (
    AuthenticationFailed,
    Client,
    InvalidLeadId,
    LeadNotFound,
    NotConfigured,
    PollyBotError,
    RateLimited,
    RateLimitInfo,
    UpstreamProtocolError,
    UpstreamUnavailable,
    validate_lead_id,
)

BASE = "https://api.example.test"
LEAD_ID = "lead_abc123"
LEAD_URL = f"{BASE}/api/v1/leads/{LEAD_ID}"
LIST_URL = f"{BASE}/api/v1/leads"
# A real-shaped key: sk-workspace_ + 51 characters, 64 in all.
KEY = "sk-workspace_" + "S3cr3tK3yMaterial" * 3
SECRET_PART = KEY[len("sk-workspace_") : -4]
assert len(KEY) == 64

LEAD = {
    "id": LEAD_ID,
    "name": "John Doe",
    "email": "john.doe@example.com",
    "phone": "+1-555-123-4567",
    "source": "website",
    "status": "contacted",
    "metadata": {"company": "Tech Corp", "interests": ["product_a"]},
    "createdAt": "2024-01-15T10:30:00.000Z",
    "updatedAt": "2024-01-16T14:30:00.000Z",
    "workspaceId": "ws_1",
}
OK = {"success": True, "data": LEAD}
NOT_FOUND = {
    "success": False,
    "error": "Lead not found",
    "code": "LEAD_NOT_FOUND",
    "details": {"leadId": LEAD_ID, "message": "No lead found with this ID in your workspace"},
}
BAD_ID = {
    "success": False,
    "error": "Invalid lead ID format",
    "code": "INVALID_ID_FORMAT",
    "details": {"leadId": LEAD_ID, "expected": "lead_[alphanumeric string]", "message": "m"},
}
RATE_HEADERS = {
    "X-RateLimit-Limit": "1000",
    "X-RateLimit-Remaining": "998",
    "X-RateLimit-Reset": "1700000000",
    "X-RateLimit-Used": "2",
}


def _error(code: str, text: str = "error") -> dict[str, Any]:
    return {"success": False, "error": text, "code": code}


def _assert_key_absent(text: str) -> None:
    assert KEY not in text
    assert SECRET_PART not in text


def _assert_safe(error: BaseException) -> None:
    """An error is safe to log: neither str nor repr nor args carry the key."""
    for text in (str(error), repr(error), repr(error.args)):
        _assert_key_absent(text)


@pytest.fixture(autouse=True)
def _no_key_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test: capture all loggers (urllib3's included) at DEBUG; the key is in none."""
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        _assert_key_absent(record.getMessage())
        _assert_key_absent(repr(record.__dict__))


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def client() -> Iterator[Client]:
    # backoff_factor=0: no backoff sleeps (and no jitter) in tests.
    with Client(base_url=BASE, api_key=KEY, backoff_factor=0) as c:
        yield c


def _call_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "leads.pollybot"]


# --- Lead ID validation --------------------------------------------------------------

HOSTILE_IDS = [
    pytest.param("", id="empty"),
    pytest.param("lead_", id="prefix-only"),
    pytest.param("lead_abc-123", id="dash"),
    pytest.param("lead_abc\n", id="trailing-newline"),
    pytest.param("../lead_x", id="path-traversal"),
    pytest.param("lead_ä", id="non-ascii"),
    pytest.param("lead_" + "a" * 96, id="101-chars"),
    pytest.param(None, id="none"),
    pytest.param(123, id="int"),
    pytest.param("LEAD_abc", id="uppercase-prefix"),
    pytest.param("lead_abc 123", id="space"),
    pytest.param("lead_abc%2F..", id="percent"),
    pytest.param("lead_١٢٣", id="unicode-digits"),
]


@pytest.mark.parametrize("lead_id", HOSTILE_IDS)
def test_hostile_lead_ids_are_rejected_without_a_call(
    lead_id: Any, client: Client, rsps: responses.RequestsMock
) -> None:
    with pytest.raises(InvalidLeadId) as get_info:
        client.get_lead(lead_id)
    with pytest.raises(InvalidLeadId) as put_info:
        client.update_lead(lead_id, changes={"status": "new"})
    with pytest.raises(InvalidLeadId):
        validate_lead_id(lead_id)
    assert len(rsps.calls) == 0
    assert get_info.value.expected == "lead_[alphanumeric string]"
    assert get_info.value.status is None
    for error in (get_info.value, put_info.value):
        _assert_safe(error)
        assert "\n" not in str(error)  # no log injection through the ID


@pytest.mark.parametrize(
    "lead_id", ["lead_abc123", "lead_1234567890abcdef", "lead_X", "lead_" + "a" * 95]
)
def test_valid_lead_ids_are_returned(lead_id: str) -> None:
    assert validate_lead_id(lead_id) == lead_id


def test_lead_id_pattern_and_constants() -> None:
    assert pollybot.MAX_LEAD_ID_LENGTH == 100
    assert pollybot.EXPECTED_LEAD_ID_FORMAT == "lead_[alphanumeric string]"
    assert pollybot.LEAD_ID_PATTERN.fullmatch("lead_abc")
    assert not pollybot.LEAD_ID_PATTERN.fullmatch("lead_abc\n")


# --- Construction ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "api_key"),
    [
        pytest.param("", KEY, id="no-base-url"),
        pytest.param("   ", KEY, id="blank-base-url"),
        pytest.param(BASE, "", id="no-key"),
        pytest.param(BASE, " \n ", id="blank-key"),
        pytest.param("api.example.test", KEY, id="no-scheme"),
        pytest.param("ftp://api.example.test", KEY, id="not-http"),
        pytest.param("https://", KEY, id="no-host"),
        pytest.param(BASE, KEY[:20] + " " + KEY[20:], id="space-in-key"),
        pytest.param(BASE, KEY[:20] + "\r\n" + KEY[20:], id="crlf-in-key"),
    ],
)
def test_not_configured(base_url: str, api_key: str) -> None:
    with pytest.raises(NotConfigured) as info:
        Client(base_url=base_url, api_key=api_key)
    _assert_safe(info.value)


def test_key_with_surrounding_whitespace_is_trimmed(rsps: responses.RequestsMock) -> None:
    rsps.get(LEAD_URL, json=OK)
    with Client(base_url=BASE, api_key=f"  {KEY}\n", backoff_factor=0) as c:
        c.get_lead(LEAD_ID)
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"


def test_repr_masks_the_key() -> None:
    c = Client(base_url="https://user:pw@api.example.test/pollybot", api_key=KEY)
    text = repr(c)
    _assert_key_absent(text)
    assert "sk-workspace_…" + KEY[-4:] in text
    assert "pw" not in text  # credentials in the base URL are not shown either
    assert "api.example.test/pollybot" in text
    assert pollybot.mask_api_key("short") == "…"
    c.close()


# --- Requests sent ----------------------------------------------------------------------


def test_get_lead_sends_auth_accept_and_user_agent(
    client: Client, rsps: responses.RequestsMock
) -> None:
    rsps.get(LEAD_URL, json=OK)
    assert client.get_lead(LEAD_ID) == LEAD
    assert len(rsps.calls) == 1
    headers = rsps.calls[0].request.headers
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"].startswith("leadsite/")


@pytest.mark.parametrize(
    "base_url",
    ["https://api.example.test/pollybot", "https://api.example.test/pollybot/"],
)
def test_base_url_path_prefix_and_trailing_slash(
    base_url: str, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"https://api.example.test/pollybot/api/v1/leads/{LEAD_ID}", json=OK)
    with Client(base_url=base_url, api_key=KEY) as c:
        assert c.get_lead(LEAD_ID)["id"] == LEAD_ID
    assert len(rsps.calls) == 1


def test_given_session_is_used_and_gets_the_retry_policy(rsps: responses.RequestsMock) -> None:
    session = requests.Session()
    rsps.get(LEAD_URL, status=503)
    c = Client(base_url=BASE, api_key=KEY, backoff_factor=0, session=session)
    with pytest.raises(UpstreamUnavailable):
        c.get_lead(LEAD_ID)
    assert len(rsps.calls) == 1 + pollybot.MAX_RETRIES
    assert "Authorization" not in session.headers  # the key is not left on a shared session
    c.close()


def test_the_environments_proxy_and_ca_bundle_are_read_once_when_the_client_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.test:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/company-ca.pem")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with Client(base_url=BASE, api_key=KEY) as c:
        session = c._session
    assert session.proxies.get("https") == "http://proxy.example.test:3128"
    assert session.verify == "/etc/ssl/company-ca.pem"
    # Not scanned again on every call.
    assert session.trust_env is False


def test_no_proxy_exempts_the_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.test:3128")
    monkeypatch.setenv("NO_PROXY", "api.example.test")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with Client(base_url=BASE, api_key=KEY) as c:
        session = c._session
    assert "https" not in session.proxies
    assert session.verify is True


# --- The status/envelope table ------------------------------------------------------------

STATUS_CASES = [
    # id, status, body (dict/list -> JSON, str -> raw), headers, error class, attributes, calls
    ("200-success-false", 200, _error("BOOM"), {}, UpstreamProtocolError, {"code": "BOOM"}, 1),
    ("200-not-json", 200, "not json", {}, UpstreamProtocolError, {"status": 200}, 1),
    ("200-html", 200, "<html><body>Login</body></html>", {}, UpstreamProtocolError, {}, 1),
    ("200-empty", 200, "", {}, UpstreamProtocolError, {}, 1),
    ("200-json-list", 200, [OK], {}, UpstreamProtocolError, {}, 1),
    ("200-data-missing", 200, {"success": True}, {}, UpstreamProtocolError, {}, 1),
    ("200-data-list", 200, {"success": True, "data": [LEAD]}, {}, UpstreamProtocolError, {}, 1),
    ("200-success-str", 200, {"success": "true", "data": LEAD}, {}, UpstreamProtocolError, {}, 1),
    (
        "200-other-lead",
        200,
        {"success": True, "data": {**LEAD, "id": "lead_other"}},
        {},
        UpstreamProtocolError,
        {},
        1,
    ),
    (
        "400-invalid-id",
        400,
        {**BAD_ID, "details": {**BAD_ID["details"], "expected": "lead_[a-z0-9]"}},
        {},
        InvalidLeadId,
        {"status": 400, "code": "INVALID_ID_FORMAT", "expected": "lead_[a-z0-9]"},
        1,
    ),
    ("400-other", 400, _error("BAD_REQUEST"), {}, UpstreamProtocolError, {"status": 400}, 1),
    ("400-html", 400, "<h1>Bad</h1>", {}, UpstreamProtocolError, {"code": None}, 1),
    ("401-missing", 401, _error("MISSING_AUTH_HEADER"), {}, AuthenticationFailed, {}, 1),
    (
        "401-invalid",
        401,
        _error("INVALID_API_KEY"),
        {},
        AuthenticationFailed,
        {"code": "INVALID_API_KEY", "status": 401},
        1,
    ),
    ("403", 403, "Forbidden", {}, AuthenticationFailed, {"status": 403, "code": None}, 1),
    (
        "404-envelope",
        404,
        NOT_FOUND,
        {"X-Request-ID": "req_42"},
        LeadNotFound,
        {"details": NOT_FOUND["details"], "request_id": "req_42", "lead_id": LEAD_ID},
        1,
    ),
    ("404-html", 404, "<html>Not Found</html>", {}, UpstreamProtocolError, {"status": 404}, 1),
    ("404-foreign-json", 404, {"detail": "nope"}, {}, UpstreamProtocolError, {}, 1),
    ("405", 405, _error("METHOD"), {}, UpstreamProtocolError, {"status": 405}, 1),
    ("422", 422, _error("VALIDATION"), {}, UpstreamProtocolError, {"status": 422}, 1),
    (
        "301-not-followed",
        301,
        "",
        {"Location": "https://elsewhere.example.test/"},
        UpstreamProtocolError,
        {"status": 301},
        1,
    ),
    (
        "429-envelope-retry-after",
        429,
        _error("RATE_LIMIT_EXCEEDED"),
        {"Retry-After": "30"},
        RateLimited,
        {"retry_after": 30, "code": "RATE_LIMIT_EXCEEDED"},
        1,
    ),
    ("429-text-no-header", 429, "Too Many", {}, RateLimited, {"retry_after": None}, 1),
    ("500", 500, _error("INTERNAL"), {}, UpstreamUnavailable, {"status": 500, "timeout": False}, 1),
    ("502", 502, "<html>Bad gateway</html>", {}, UpstreamUnavailable, {"status": 502}, 3),
    ("503", 503, _error("UNAVAILABLE"), {}, UpstreamUnavailable, {"status": 503}, 3),
    ("504", 504, "", {}, UpstreamUnavailable, {"status": 504, "timeout": False}, 3),
]


@pytest.mark.parametrize(
    ("status", "body", "headers", "error_class", "attributes", "calls"),
    [pytest.param(*case[1:], id=case[0]) for case in STATUS_CASES],
)
def test_status_and_envelope_mapping(
    status: int,
    body: Any,
    headers: dict[str, str],
    error_class: type[PollyBotError],
    attributes: dict[str, Any],
    calls: int,
    client: Client,
    rsps: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = body if isinstance(body, str) else json.dumps(body)
    rsps.get(LEAD_URL, body=text, status=status, headers=headers)
    with pytest.raises(error_class) as info:
        client.get_lead(LEAD_ID)
    error = info.value
    assert type(error) is error_class
    for name, value in attributes.items():
        assert getattr(error, name) == value, name
    assert len(rsps.calls) == calls
    assert calls == 1 or calls == 1 + pollybot.MAX_RETRIES
    _assert_safe(error)
    # One WARNING line for the whole call, with the attempts counted.
    (record,) = _call_records(caplog)
    assert record.levelno == logging.WARNING
    assert record.attempts == calls  # type: ignore[attr-defined]
    assert record.status == status  # type: ignore[attr-defined]


def test_ok_returns_data_and_logs_one_info_line(
    client: Client, rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    rsps.get(LEAD_URL, json=OK)
    assert client.get_lead(LEAD_ID) == LEAD
    (record,) = _call_records(caplog)
    assert record.levelno == logging.INFO
    assert record.method == "GET"  # type: ignore[attr-defined]
    assert record.path == f"/api/v1/leads/{LEAD_ID}"  # type: ignore[attr-defined]
    assert record.status == 200  # type: ignore[attr-defined]
    assert record.attempts == 1  # type: ignore[attr-defined]
    assert isinstance(record.elapsed_ms, int)  # type: ignore[attr-defined]
    assert LEAD_ID in record.getMessage()
    # Never the response body.
    assert "John Doe" not in record.getMessage()
    assert "John Doe" not in repr(record.__dict__)


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_then_success(
    status: int, client: Client, rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    rsps.get(LEAD_URL, status=status)
    rsps.get(LEAD_URL, json=OK)
    assert client.get_lead(LEAD_ID) == LEAD
    assert len(rsps.calls) == 2
    (record,) = _call_records(caplog)
    assert record.levelno == logging.INFO
    assert record.attempts == 2  # type: ignore[attr-defined]


def test_max_retries_is_configurable(rsps: responses.RequestsMock) -> None:
    rsps.get(LEAD_URL, status=503)
    with Client(base_url=BASE, api_key=KEY, max_retries=0) as c, pytest.raises(UpstreamUnavailable):
        c.get_lead(LEAD_ID)
    assert len(rsps.calls) == 1


def test_put_is_never_retried(client: Client, rsps: responses.RequestsMock) -> None:
    rsps.put(LEAD_URL, status=503)
    with pytest.raises(UpstreamUnavailable) as info:
        client.update_lead(LEAD_ID, changes={"status": "qualified"})
    assert info.value.status == 503
    assert len(rsps.calls) == 1


def test_update_lead_puts_only_the_changes(client: Client, rsps: responses.RequestsMock) -> None:
    changes = {"status": "qualified", "metadata": {"notes": "called"}, "phone": None}
    updated = {**LEAD, "status": "qualified"}
    rsps.put(
        LEAD_URL,
        json={"success": True, "data": updated},
        match=[matchers.json_params_matcher(changes)],
    )
    assert client.update_lead(LEAD_ID, changes=changes) == updated
    request = rsps.calls[0].request
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == f"Bearer {KEY}"


def test_update_lead_rejects_unserialisable_changes_before_calling(
    client: Client, rsps: responses.RequestsMock
) -> None:
    with pytest.raises(ValueError, match="JSON"):
        client.update_lead(LEAD_ID, changes={"lead_score": float("nan")})
    assert len(rsps.calls) == 0


# --- Transport exceptions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exception", "error_class", "timeout"),
    [
        pytest.param(requests.ConnectionError("refused"), UpstreamUnavailable, False, id="conn"),
        pytest.param(requests.ConnectTimeout("slow"), UpstreamUnavailable, True, id="connect-to"),
        pytest.param(requests.ReadTimeout("slow"), UpstreamUnavailable, True, id="read-timeout"),
        pytest.param(
            requests.exceptions.SSLError("bad cert"), UpstreamUnavailable, False, id="ssl"
        ),
        pytest.param(
            requests.exceptions.ProxyError("proxy"), UpstreamUnavailable, False, id="proxy"
        ),
        pytest.param(
            requests.exceptions.ChunkedEncodingError("cut"),
            UpstreamUnavailable,
            False,
            id="chunked",
        ),
        pytest.param(
            urllib3.exceptions.ProtocolError("reset"), UpstreamUnavailable, False, id="urllib3"
        ),
        pytest.param(ConnectionResetError("reset"), UpstreamUnavailable, False, id="oserror"),
        pytest.param(
            requests.exceptions.ContentDecodingError("gzip"), UpstreamProtocolError, None, id="dec"
        ),
        pytest.param(
            requests.TooManyRedirects("loop"), UpstreamProtocolError, None, id="redirects"
        ),
        pytest.param(requests.exceptions.InvalidURL("bad"), NotConfigured, None, id="invalid-url"),
        pytest.param(requests.exceptions.MissingSchema("bad"), NotConfigured, None, id="schema"),
        pytest.param(requests.RequestException("other"), UpstreamUnavailable, False, id="other"),
    ],
)
def test_transport_exceptions_are_wrapped(
    exception: Exception,
    error_class: type[PollyBotError],
    timeout: bool | None,
    client: Client,
    rsps: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rsps.get(LEAD_URL, body=exception)
    with pytest.raises(error_class) as info:
        client.get_lead(LEAD_ID)
    assert type(info.value) is error_class
    if timeout is not None:
        assert info.value.timeout is timeout  # type: ignore[attr-defined]
    assert info.value.lead_id == LEAD_ID
    assert len(rsps.calls) == 1
    _assert_safe(info.value)
    (record,) = _call_records(caplog)
    assert record.levelno == logging.WARNING
    assert record.status is None  # type: ignore[attr-defined]


# --- Rate limits -----------------------------------------------------------------------------


def test_last_rate_limit_is_kept_from_every_answer(
    client: Client, rsps: responses.RequestsMock
) -> None:
    assert client.last_rate_limit is None
    rsps.get(LEAD_URL, json=OK, headers=RATE_HEADERS)
    client.get_lead(LEAD_ID)
    assert client.last_rate_limit == RateLimitInfo(
        limit=1000, remaining=998, reset=1700000000, used=2
    )
    rsps.replace(
        responses.GET,
        LEAD_URL,
        json=NOT_FOUND,
        status=404,
        headers={**RATE_HEADERS, "X-RateLimit-Remaining": "997", "X-RateLimit-Used": "3"},
    )
    with pytest.raises(LeadNotFound):
        client.get_lead(LEAD_ID)
    assert client.last_rate_limit == RateLimitInfo(
        limit=1000, remaining=997, reset=1700000000, used=3
    )
    # A proxy's page without the headers does not erase what we know.
    rsps.replace(responses.GET, LEAD_URL, body="<html>oops</html>", status=500)
    with pytest.raises(UpstreamUnavailable):
        client.get_lead(LEAD_ID)
    assert client.last_rate_limit is not None
    assert client.last_rate_limit.remaining == 997


def test_rate_limit_headers_kept_on_429(client: Client, rsps: responses.RequestsMock) -> None:
    rsps.get(LEAD_URL, status=429, headers={**RATE_HEADERS, "X-RateLimit-Remaining": "0"})
    with pytest.raises(RateLimited):
        client.get_lead(LEAD_ID)
    assert client.last_rate_limit is not None
    assert client.last_rate_limit.remaining == 0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({}, None, id="none"),
        pytest.param({"Content-Type": "text/html"}, None, id="unrelated"),
        pytest.param(RATE_HEADERS, RateLimitInfo(1000, 998, 1700000000, 2), id="all"),
        pytest.param(
            {k.lower(): v for k, v in RATE_HEADERS.items()},
            RateLimitInfo(1000, 998, 1700000000, 2),
            id="lowercase",
        ),
        pytest.param(
            {"X-RateLimit-Remaining": "5"}, RateLimitInfo(None, 5, None, None), id="partial"
        ),
        pytest.param(
            {
                "X-RateLimit-Limit": "lots",
                "X-RateLimit-Remaining": "-1",
                "X-RateLimit-Reset": "1.5e9",
                "X-RateLimit-Used": " 7 ",
            },
            RateLimitInfo(None, None, None, 7),
            id="garbage",
        ),
    ],
)
def test_rate_limit_info_from_headers(
    headers: dict[str, str], expected: RateLimitInfo | None
) -> None:
    assert RateLimitInfo.from_headers(headers) == expected


def _http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


def _unix_in(seconds_from_now: int) -> str:
    return str(int(time.time()) + seconds_from_now)


# Headers are built when the test runs (not at collection), so that time-relative
# values are measured against the same clock as the client's.
@pytest.mark.parametrize(
    ("make_headers", "low", "high"),
    [
        pytest.param(lambda: {"Retry-After": "120"}, 120, 120, id="seconds"),
        pytest.param(lambda: {"Retry-After": "0"}, 1, 1, id="zero-clamped-to-1"),
        pytest.param(lambda: {"Retry-After": "999999"}, 3600, 3600, id="capped-to-an-hour"),
        pytest.param(lambda: {"Retry-After": _http_date(300)}, 298, 301, id="http-date"),
        pytest.param(lambda: {"Retry-After": _http_date(-300)}, 1, 1, id="http-date-past"),
        pytest.param(lambda: {"X-RateLimit-Reset": _unix_in(600)}, 595, 601, id="ratelimit-reset"),
        pytest.param(lambda: {"X-RateLimit-Reset": "1"}, 1, 1, id="reset-in-the-past"),
        pytest.param(
            lambda: {"Retry-After": "soon", "X-RateLimit-Reset": _unix_in(60)},
            55,
            61,
            id="garbage-retry-after-falls-back",
        ),
        pytest.param(lambda: {"Retry-After": "-5"}, None, None, id="negative-ignored"),
    ],
)
def test_retry_after(
    make_headers: Callable[[], dict[str, str]],
    low: int | None,
    high: int | None,
    client: Client,
    rsps: responses.RequestsMock,
) -> None:
    headers = make_headers()
    rsps.get(LEAD_URL, status=429, headers=headers, json=_error("RATE_LIMIT_EXCEEDED"))
    with pytest.raises(RateLimited) as info:
        client.get_lead(LEAD_ID)
    assert len(rsps.calls) == 1  # never retried, never slept on
    if low is None:
        assert info.value.retry_after is None
    else:
        assert info.value.retry_after is not None
        assert low <= info.value.retry_after <= high


# --- Size cap -----------------------------------------------------------------------------------


def _padded_envelope(size: int) -> bytes:
    """A valid success envelope of exactly `size` bytes."""
    base = json.dumps({"success": True, "data": {**LEAD, "metadata": {"notes": ""}}})
    body = base.replace('"notes": ""', '"notes": "' + "x" * (size - len(base)) + '"')
    assert len(body) == size
    return body.encode()


@pytest.mark.parametrize("with_length", [True, False], ids=["content-length", "no-length"])
def test_body_over_the_cap_is_a_protocol_error(
    with_length: bool, rsps: responses.RequestsMock
) -> None:
    rsps.get(LEAD_URL, body=_padded_envelope(2048), auto_calculate_content_length=with_length)
    with (
        Client(base_url=BASE, api_key=KEY, max_response_bytes=1024) as c,
        pytest.raises(UpstreamProtocolError, match="too large"),
    ):
        c.get_lead(LEAD_ID)
    assert ("Content-Length" in rsps.calls[0].response.headers) is with_length
    assert len(rsps.calls) == 1


def test_body_at_the_cap_is_accepted(rsps: responses.RequestsMock) -> None:
    rsps.get(LEAD_URL, body=_padded_envelope(1024))
    with Client(base_url=BASE, api_key=KEY, max_response_bytes=1024) as c:
        assert c.get_lead(LEAD_ID)["id"] == LEAD_ID


def test_default_cap_is_one_mib(client: Client, rsps: responses.RequestsMock) -> None:
    assert pollybot.MAX_RESPONSE_BYTES == 1024 * 1024
    rsps.get(LEAD_URL, body=_padded_envelope(1024 * 1024 + 1))
    with pytest.raises(UpstreamProtocolError):
        client.get_lead(LEAD_ID)


def test_oversized_error_page_is_still_mapped_by_status(rsps: responses.RequestsMock) -> None:
    rsps.get(LEAD_URL, status=401, body="x" * 4096)
    with (
        Client(base_url=BASE, api_key=KEY, max_response_bytes=1024) as c,
        pytest.raises(AuthenticationFailed),
    ):
        c.get_lead(LEAD_ID)


# --- List Leads ---------------------------------------------------------------------------------

LIST_DATA = {
    "leads": [{"id": LEAD_ID, "name": "John Doe"}],
    "pagination": {
        "page": 2,
        "limit": 10,
        "total": 11,
        "totalPages": 2,
        "hasNext": False,
        "hasPrev": True,
    },
}


def test_list_leads_sends_params_and_returns_data(
    client: Client, rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    params = {"page": "2", "limit": "10", "status": "new", "search": "john doe"}
    rsps.get(
        LIST_URL,
        json={"success": True, "data": LIST_DATA},
        match=[matchers.query_param_matcher(params)],
    )
    assert client.list_leads(page=2, limit=10, status="new", search="john doe") == LIST_DATA
    assert len(rsps.calls) == 1
    (record,) = _call_records(caplog)
    # The query (search terms are personal data) is not logged.
    assert record.path == "/api/v1/leads"  # type: ignore[attr-defined]
    assert "john" not in record.getMessage()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"leads": {}, "pagination": {}}, id="leads-not-list"),
        pytest.param({"leads": ["lead_1"], "pagination": {}}, id="item-not-dict"),
        pytest.param({"leads": []}, id="no-pagination"),
        pytest.param({"leads": [], "pagination": []}, id="pagination-not-dict"),
    ],
)
def test_list_leads_checks_the_shape(
    data: dict[str, Any], client: Client, rsps: responses.RequestsMock
) -> None:
    rsps.get(LIST_URL, json={"success": True, "data": data})
    with pytest.raises(UpstreamProtocolError):
        client.list_leads()


def test_list_leads_404_is_not_a_missing_lead(client: Client, rsps: responses.RequestsMock) -> None:
    rsps.get(LIST_URL, status=404, json=_error("NOT_FOUND"))
    with pytest.raises(UpstreamProtocolError):
        client.list_leads()


@pytest.mark.parametrize(
    "kwargs", [{"page": 0}, {"limit": 0}, {"limit": 101}, {"page": True}, {"limit": "5"}]
)
def test_list_leads_rejects_bad_paging_without_a_call(
    kwargs: dict[str, Any], client: Client, rsps: responses.RequestsMock
) -> None:
    with pytest.raises(ValueError):
        client.list_leads(**kwargs)
    assert len(rsps.calls) == 0


# --- Errors as values ---------------------------------------------------------------


def test_errors_survive_pickling() -> None:
    error = LeadNotFound(status=404, code="LEAD_NOT_FOUND", details={"a": 1}, lead_id=LEAD_ID)
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own bytes)
    assert type(copy) is LeadNotFound
    assert (copy.status, copy.code, copy.details, copy.lead_id) == (
        404,
        "LEAD_NOT_FOUND",
        {"a": 1},
        LEAD_ID,
    )
    assert str(copy) == str(error)
    limited = pickle.loads(pickle.dumps(RateLimited(retry_after=5)))  # noqa: S301
    assert limited.retry_after == 5


def test_str_and_repr_show_the_safe_fields() -> None:
    error = UpstreamUnavailable(timeout=True, status=504, request_id="r1", lead_id=LEAD_ID)
    assert "status=504" in str(error) and "lead_id='lead_abc123'" in str(error)
    assert "request_id='r1'" in str(error) and "timeout=True" in str(error)
    assert repr(error).startswith("UpstreamUnavailable(")


def test_untrusted_codes_and_request_ids_are_dropped(
    client: Client, rsps: responses.RequestsMock
) -> None:
    rsps.get(
        LEAD_URL,
        status=404,
        json={**NOT_FOUND, "code": "X\nforged log line"},
        headers={"X-Request-ID": "r" * 500},
    )
    with pytest.raises(LeadNotFound) as info:
        client.get_lead(LEAD_ID)
    assert info.value.code is None
    assert info.value.request_id is None


# --- Real sockets on 127.0.0.1 ------------------------------------------------------

Handler = Callable[[socket.socket, int], None]


class LocalServer:
    """A tiny threaded TCP server: `handler(conn, index)` answers the index-th connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.methods: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                index = self.connections
                self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn, index), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket, index: int) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            self.methods.append(head.split(b" ", 1)[0].decode())
            self.handler(conn, index)

    def stopped(self) -> threading.Event:
        return self._stop

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._accepter.join(2)
        for thread in self._threads:
            thread.join(2)


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], LocalServer]]:
    servers: list[LocalServer] = []

    def start(handler: Handler) -> LocalServer:
        server = LocalServer(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def _answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _scripted(*answers: bytes) -> Handler:
    """Answer the n-th connection with answers[n] (the last one repeats)."""

    def handler(conn: socket.socket, index: int) -> None:
        conn.sendall(answers[min(index, len(answers) - 1)])

    return handler


def _local_client(server_url: str, **overrides: Any) -> Client:
    options: dict[str, Any] = {"backoff_factor": 0, **overrides}
    return Client(base_url=server_url, api_key=KEY, **options)


def test_real_retries_on_503_then_success(
    serve: Callable[[Handler], LocalServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = serve(_scripted(_answer(503), _answer(503), _answer(200, json.dumps(OK).encode())))
    with _local_client(server.url) as c:
        assert c.get_lead(LEAD_ID) == LEAD
    assert server.connections == 3
    (record,) = _call_records(caplog)
    assert record.attempts == 3  # type: ignore[attr-defined]
    # urllib3's own DEBUG lines were captured too (and checked for the key).
    assert any(r.name.startswith("urllib3") for r in caplog.records)


def test_dropped_connection_is_retried(serve: Callable[[Handler], LocalServer]) -> None:
    def drop_first(conn: socket.socket, index: int) -> None:
        if index > 0:  # the first connection is closed without an answer
            conn.sendall(_answer(200, json.dumps(OK).encode()))

    server = serve(drop_first)
    with _local_client(server.url) as c:
        assert c.get_lead(LEAD_ID) == LEAD
    assert server.connections == 2


def test_real_502_exhausts_retries(serve: Callable[[Handler], LocalServer]) -> None:
    server = serve(_scripted(_answer(502, b"<html>bad gateway</html>")))
    with _local_client(server.url) as c, pytest.raises(UpstreamUnavailable) as info:
        c.get_lead(LEAD_ID)
    assert info.value.status == 502
    assert server.connections == 1 + pollybot.MAX_RETRIES


@pytest.mark.parametrize("status", [400, 404, 429])
def test_real_4xx_is_never_retried(status: int, serve: Callable[[Handler], LocalServer]) -> None:
    server = serve(_scripted(_answer(status, json.dumps(NOT_FOUND).encode())))
    with _local_client(server.url) as c, pytest.raises(PollyBotError):
        c.get_lead(LEAD_ID)
    assert server.connections == 1


def test_real_put_503_is_not_retried(serve: Callable[[Handler], LocalServer]) -> None:
    server = serve(_scripted(_answer(503)))
    with _local_client(server.url) as c, pytest.raises(UpstreamUnavailable):
        c.update_lead(LEAD_ID, changes={"status": "lost"})
    assert server.connections == 1
    assert server.methods == ["PUT"]


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(("method", "attempts"), [("GET", 3), ("PUT", 1)])
def test_connection_refused(method: str, attempts: int, caplog: pytest.LogCaptureFixture) -> None:
    with _local_client(_closed_port_url()) as c, pytest.raises(UpstreamUnavailable) as info:
        if method == "GET":
            c.get_lead(LEAD_ID)
        else:
            c.update_lead(LEAD_ID, changes={"status": "new"})
    assert info.value.timeout is False
    _assert_safe(info.value)
    (record,) = _call_records(caplog)
    assert record.attempts == attempts  # type: ignore[attr-defined]
    assert record.levelno == logging.WARNING


def test_deadline_refuses_a_retry_whose_backoff_does_not_fit(
    serve: Callable[[Handler], LocalServer],
) -> None:
    server = serve(_scripted(_answer(503)))
    # The second retry would sleep min(5 * 2, BACKOFF_MAX) = 2 s > what is left of 1.5 s.
    with _local_client(server.url, backoff_factor=5.0, deadline=1.5) as c:
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailable) as info:
            c.get_lead(LEAD_ID)
        elapsed = time.monotonic() - started
    assert info.value.status == 503
    assert server.connections == 2
    assert elapsed < 1.5


def _trickle(server_stop: Callable[[], threading.Event]) -> Handler:
    def handler(conn: socket.socket, index: int) -> None:
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
        conn.sendall(head.encode())
        stop = server_stop()
        # 1 byte every 0.2 s for 5 s at most: without the deadline the call would
        # last those 5 s (and fail the time bound) instead of hanging the suite.
        for _ in range(25):
            if stop.wait(0.2):
                return
            conn.sendall(b" ")

    return handler


def test_trickling_body_is_cut_off_at_the_deadline(
    serve: Callable[[Handler], LocalServer],
) -> None:
    holder: list[LocalServer] = []
    server = serve(_trickle(lambda: holder[0].stopped()))
    holder.append(server)
    with _local_client(server.url, deadline=1.0) as c:
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailable) as info:
            c.get_lead(LEAD_ID)
        elapsed = time.monotonic() - started
    assert info.value.timeout is True
    assert info.value.status == 200
    assert elapsed < 3  # correctness bound: requests' per-read timeout alone never fires here
    assert server.connections == 1  # a timeout is not retried


def test_silent_server_is_cut_off_at_the_deadline_not_the_read_timeout(
    serve: Callable[[Handler], LocalServer],
) -> None:
    holder: list[LocalServer] = []

    def silent(conn: socket.socket, index: int) -> None:
        holder[0].stopped().wait(10)

    server = serve(silent)
    holder.append(server)
    with _local_client(server.url, read_timeout=5.0, deadline=1.0) as c:
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailable) as info:
            c.get_lead(LEAD_ID)
        elapsed = time.monotonic() - started
    assert info.value.timeout is True
    assert elapsed < 3


def test_headers_trickled_under_the_read_timeout_are_cut_at_the_deadline(
    serve: Callable[[Handler], LocalServer],
) -> None:
    holder: list[LocalServer] = []

    def trickle_head(conn: socket.socket, index: int) -> None:
        # One byte of the status line every 0.1 s: each read succeeds well within
        # the read timeout, so only the call's deadline can end this.
        for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 100:
            if holder[0].stopped().wait(0.1):
                return
            conn.sendall(bytes([byte]))

    server = serve(trickle_head)
    holder.append(server)
    with _local_client(server.url, read_timeout=0.5, deadline=1.0) as c:
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailable) as info:
            c.get_lead(LEAD_ID)
        elapsed = time.monotonic() - started
    assert info.value.timeout is True
    assert elapsed < 2  # correctness bound: without the watchdog this runs ~11 s


def test_a_body_cut_short_is_an_unexpected_answer(
    serve: Callable[[Handler], LocalServer],
) -> None:
    cut = b'HTTP/1.1 200 OK\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n{"success": tr'
    server = serve(_scripted(cut))
    with _local_client(server.url) as c, pytest.raises(UpstreamProtocolError) as info:
        c.get_lead(LEAD_ID)
    assert info.value.status == 200
    assert server.connections == 1


def test_declared_oversize_is_refused_without_reading(
    serve: Callable[[Handler], LocalServer],
) -> None:
    holder: list[LocalServer] = []

    def huge(conn: socket.socket, index: int) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n\r\n")
        holder[0].stopped().wait(10)  # never sends the body: reading it would time out

    server = serve(huge)
    holder.append(server)
    with _local_client(server.url, deadline=3.0) as c:
        started = time.monotonic()
        with pytest.raises(UpstreamProtocolError, match="too large"):
            c.get_lead(LEAD_ID)
    assert time.monotonic() - started < 1


def test_gzip_body_is_decoded_and_the_cap_applies_to_decoded_bytes(
    serve: Callable[[Handler], LocalServer],
) -> None:
    small = gzip.compress(json.dumps(OK).encode())
    bomb_body = json.dumps({"success": True, "data": {**LEAD, "notes": " " * (4 * 1024 * 1024)}})
    bomb = gzip.compress(bomb_body.encode())
    assert len(bomb) < pollybot.MAX_RESPONSE_BYTES  # small on the wire
    encoded = {"Content-Encoding": "gzip"}
    server = serve(_scripted(_answer(200, small, encoded), _answer(200, bomb, encoded)))
    with _local_client(server.url) as c:
        assert c.get_lead(LEAD_ID) == LEAD
        with pytest.raises(UpstreamProtocolError, match="too large"):
            c.get_lead(LEAD_ID)
