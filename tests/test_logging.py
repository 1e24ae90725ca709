"""Logs: one line per upstream call with the request ID and the cache outcome,
request IDs taken only when sane, and keys redacted by the configured filter."""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Iterator

import pytest
from django.test import Client

from leads import services
from leads.log import REDACTED, RequestContextFilter, cache_outcome_var, request_id_var
from sandbox.data import SEED_LEAD

pytestmark = pytest.mark.django_db

LEAD_ID = SEED_LEAD["id"]
SEED_URL = f"/leads/{LEAD_ID}/"
KEY_PREFIX = "sk-workspace_"
KEY = KEY_PREFIX + "LOGKEY".ljust(51, "3")
SECRET = KEY.removeprefix(KEY_PREFIX)
GENERATED_ID = re.compile(r"[0-9a-f]{32}")  # uuid4().hex
# What the client's line says for one successful call of Get Lead.
CALL_LINE = re.compile(
    r"request_id=(?P<request_id>\S+) cache=(?P<cache>\S+) "
    r"PollyBot GET /api/v1/leads/(?P<lead>lead_[A-Za-z0-9]+) -> (?P<status>\d{3}) ok "
    r"in (?P<ms>\d+) ms \((?P<attempts>\d+) attempts?\)$"
)


def _console_handler() -> logging.Handler:
    """The "console" handler that settings.LOGGING attached to the "leads" logger."""
    (handler,) = [h for h in logging.getLogger("leads").handlers if h.get_name() == "console"]
    return handler


@pytest.fixture
def leads_lines() -> Iterator[io.StringIO]:
    """The "leads" loggers' lines as the configured console handler writes them:
    same filters and formatter, into a buffer instead of stderr."""
    console = _console_handler()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(console.formatter)
    for item in console.filters:
        handler.addFilter(item)
    logger = logging.getLogger("leads")
    logger.addHandler(handler)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


def _call_lines(stream: io.StringIO) -> list[re.Match[str]]:
    return [m for line in stream.getvalue().splitlines() if (m := CALL_LINE.search(line))]


def test_the_console_handler_has_the_context_filter_and_the_plain_format():
    console = _console_handler()
    assert any(isinstance(item, RequestContextFilter) for item in console.filters)
    assert console.formatter is not None
    assert "request_id=%(request_id)s" in console.formatter._fmt
    assert "cache=%(cache)s" in console.formatter._fmt


def test_one_line_per_upstream_call_with_method_path_status_time_attempts_and_cache(
    sales_client, sandbox, settings, leads_lines
):
    headers = {"HTTP_X_REQUEST_ID": "abc-123"}
    assert sales_client.get(SEED_URL, **headers).status_code == 200  # miss
    assert sales_client.get(SEED_URL, **headers).status_code == 200  # fresh hit: no call
    settings.POLLYBOT_CACHE_TTL = 0
    assert sales_client.get(SEED_URL, **headers).status_code == 200  # expired
    settings.POLLYBOT_CACHE_TTL = 300
    refreshed = sales_client.post(f"{SEED_URL}refresh/", **headers)
    assert refreshed.status_code == 302

    lines = _call_lines(leads_lines)
    assert [m["cache"] for m in lines] == ["miss", "expired", "refresh"]
    assert len(sandbox.app.requests) == len(lines)
    for match in lines:
        assert match["request_id"] == "abc-123"
        assert match["lead"] == LEAD_ID
        assert match["status"] == "200"
        assert match["attempts"] == "1"
        assert int(match["ms"]) >= 0


@pytest.fixture
def leads_records(caplog, monkeypatch):
    """caplog on every logger at INFO, "leads" included (it does not propagate)."""
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="leads")
    monkeypatch.setattr(logging.getLogger("leads"), "propagate", True)
    return caplog


def _records(caplog: pytest.LogCaptureFixture, prefix: str) -> list[logging.LogRecord]:
    """Records of loggers under `prefix`, once each: pytest 9 also attaches its
    handler to non-propagating loggers, so with propagation a record is seen twice."""
    unique = {id(r): r for r in caplog.records if r.name.startswith(prefix)}
    return list(unique.values())


def test_the_call_record_carries_structured_fields(sales_client, sandbox, leads_records):
    sales_client.get(SEED_URL, HTTP_X_REQUEST_ID="abc-123")
    (record,) = _records(leads_records, "leads.pollybot")
    assert record.levelno == logging.INFO
    assert (record.method, record.path, record.status, record.attempts) == (
        "GET",
        f"/api/v1/leads/{LEAD_ID}",
        200,
        1,
    )
    assert isinstance(record.elapsed_ms, int)
    assert record.request_id == "abc-123"
    assert record.cache == "miss"


def test_a_failed_call_is_one_warning_line_with_its_attempts(sales_client, sandbox, leads_lines):
    sandbox.app.inject(status=503, body=b"down", times=10)
    response = sales_client.get(SEED_URL, HTTP_X_REQUEST_ID="req-503")
    assert response.status_code == 502
    lines = [
        line for line in leads_lines.getvalue().splitlines() if "PollyBot GET /api/v1/" in line
    ]
    assert len(lines) == 1
    assert " WARNING leads.pollybot request_id=req-503 cache=miss " in lines[0]
    assert re.search(r"-> 503 UpstreamUnavailable in \d+ ms \(3 attempts\)$", lines[0])


SANE_IDS = ["abc-123", "A.b_c-9", "x" * 64, "0"]
INSANE_IDS = [
    "x\ny",
    "x\r\nSet-Cookie: a=b",
    "x" * 65,
    "x" * 200,
    "a b",
    "<script>",
    "id=1 cache=forged",
    "",
    "é",
]


@pytest.mark.parametrize("incoming", SANE_IDS + INSANE_IDS)
def test_the_request_id_is_taken_when_sane_else_made_and_on_every_record(
    sales_client, sandbox, leads_records, incoming
):
    response = sales_client.get(SEED_URL, HTTP_X_REQUEST_ID=incoming)
    assert response.status_code == 200
    request_id = response["X-Request-ID"]
    if incoming in SANE_IDS:
        assert request_id == incoming
    else:
        assert GENERATED_ID.fullmatch(request_id)
    records = _records(leads_records, "leads")
    assert {r.name for r in records} >= {"leads.pollybot"}
    assert {r.request_id for r in records} == {request_id}


@pytest.mark.parametrize(
    ("url", "status"), [("/no/such/page/", 404), ("/leads/not-a-lead-id/", 400)]
)
def test_django_request_warnings_carry_the_request_id(sales_client, leads_records, url, status):
    # Django logs 4xx answers ("Not Found: /no/such/page/") on the django.request logger.
    response = sales_client.get(url, HTTP_X_REQUEST_ID="abc-123")
    assert response.status_code == status
    warnings = _records(leads_records, "django.request")
    assert warnings
    assert {r.request_id for r in warnings} == {"abc-123"}


def test_a_server_error_record_carries_the_request_id(sales_user, leads_records, monkeypatch):
    def crash(**kwargs: object) -> None:
        raise RuntimeError(f"crashed holding {KEY}")

    monkeypatch.setattr(services, "get_lead", crash)
    client = Client(raise_request_exception=False)
    client.force_login(sales_user)
    response = client.get(SEED_URL, HTTP_X_REQUEST_ID="abc-500")
    assert response.status_code == 500
    (error,) = [r for r in _records(leads_records, "django.request") if r.levelno >= logging.ERROR]
    assert error.request_id == "abc-500"
    # The traceback went through the filter: rendered, redacted, and no longer attached.
    assert error.exc_info is None
    assert error.exc_text is not None
    assert "RuntimeError: crashed holding " + REDACTED in error.exc_text
    assert KEY not in error.exc_text


def test_every_response_gets_its_own_generated_id(client):
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]
    assert GENERATED_ID.fullmatch(first)
    assert GENERATED_ID.fullmatch(second)
    assert first != second


def test_the_request_id_does_not_outlive_the_request(client):
    client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")
    assert request_id_var.get() == "-"


# --- the redaction filter --------------------------------------------------------------


def _record(msg: str, args: tuple[object, ...] | None = None, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("leads.test", logging.ERROR, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def _raised(text: str) -> tuple[type[BaseException], BaseException, object]:
    try:
        raise RuntimeError(text)
    except RuntimeError:
        info = sys.exc_info()
    assert info[0] is not None and info[1] is not None
    return info[0], info[1], info[2]


@pytest.mark.parametrize(
    ("msg", "args"),
    [
        (f"calling with {KEY}", None),
        ("calling with %s", (KEY,)),
        ("headers %r", ({"Authorization": f"Bearer {KEY}"},)),
        ("calling with %(key)s", ({"key": KEY},)),
        (f"two keys {KEY} and {KEY_PREFIX}other-Key_9", None),
    ],
)
def test_the_filter_redacts_keys_in_message_and_args(msg, args):
    record = _record(msg, args)
    assert RequestContextFilter().filter(record) is True
    text = record.getMessage()
    assert KEY not in text
    assert SECRET not in text
    assert REDACTED in text
    assert record.args is None  # no handler can format the key back in


def test_the_filter_redacts_exception_text_and_stack():
    record = _record("call failed")
    record.exc_info = _raised(f"refused {KEY}")
    record.stack_info = f"Stack (most recent call last):\n  key={KEY}"
    RequestContextFilter().filter(record)
    assert record.exc_info is None
    assert record.exc_text is not None
    assert "RuntimeError: refused " + REDACTED in record.exc_text
    assert KEY not in record.exc_text
    assert record.stack_info is not None
    assert KEY not in record.stack_info
    assert REDACTED in record.stack_info


def test_the_filter_adds_the_request_id_and_the_cache_outcome():
    id_token = request_id_var.set("req-7")
    cache_token = cache_outcome_var.set("expired")
    try:
        record = _record("x")
        RequestContextFilter().filter(record)
    finally:
        cache_outcome_var.reset(cache_token)
        request_id_var.reset(id_token)
    assert (record.request_id, record.cache) == ("req-7", "expired")
    outside = _record("x")
    RequestContextFilter().filter(outside)
    assert (outside.request_id, outside.cache) == ("-", "-")


def test_the_configured_handler_writes_no_key(leads_lines):
    logger = logging.getLogger("leads.test")
    logger.warning("key %s in args", KEY)
    logger.warning(f"key {KEY} in the message")
    try:
        raise ValueError(f"key {KEY} in an exception")
    except ValueError:
        logger.exception("failed with %r", {"api_key": KEY})
    output = leads_lines.getvalue()
    assert KEY not in output
    assert SECRET not in output
    assert output.count(REDACTED) == 4
    assert "ValueError: key sk-workspace_[redacted] in an exception" in output
    assert "request_id=- cache=- " in output
