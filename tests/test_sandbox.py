"""The stand-in PollyBot API, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import datetime
import json
import re
import signal
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.__main__ import mask_key
from sandbox.app import RecordedRequest, SandboxApp
from sandbox.data import DEMO_API_KEY, SEED_LEAD, demo_leads
from sandbox.server import RunningSandbox, serve

TODAY = datetime.date(2024, 3, 14)
SEED_ID = "lead_1234567890abcdef"
ISO_MS_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
RATE_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-RateLimit-Used",
)
T0 = 1_700_000_000.0
HOUR = 3600


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Api:
    """A tiny HTTP helper: the demo key by default, never the environment's proxies."""

    def __init__(self, running: RunningSandbox) -> None:
        self.running = running
        self.app = running.app
        self.session = requests.Session()
        self.session.trust_env = False

    def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = DEMO_API_KEY,
        authorization: str | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if authorization is not None:
            headers["Authorization"] = authorization
        elif key is not None:
            headers["Authorization"] = f"Bearer {key}"
        kwargs.setdefault("timeout", 5)
        return self.session.request(method, self.running.base_url + path, headers=headers, **kwargs)


@pytest.fixture(scope="module")
def api_server() -> Iterator[RunningSandbox]:
    with serve(SandboxApp(today=TODAY)) as running:
        yield running


@pytest.fixture
def api(api_server: RunningSandbox) -> Iterator[Api]:
    # Each test starts from the demo workspace and an empty log; writes do not leak.
    api_server.app.set_leads(demo_leads(today=TODAY))
    api_server.app.reset_log()
    helper = Api(api_server)
    yield helper
    helper.session.close()


@pytest.fixture
def limited() -> Iterator[tuple[Api, FakeClock]]:
    clock = FakeClock(T0)
    with serve(SandboxApp(today=TODAY, rate_limit=3, clock=clock)) as running:
        yield Api(running), clock


def by_id(lead_id: str) -> dict[str, Any]:
    return next(lead for lead in demo_leads(today=TODAY) if lead["id"] == lead_id)


# --- authentication ---

MISSING = {
    "success": False,
    "error": "Missing authorization header",
    "code": "MISSING_AUTH_HEADER",
}
INVALID = {"success": False, "error": "Invalid API key", "code": "INVALID_API_KEY"}


@pytest.mark.parametrize(
    ("authorization", "status", "body"),
    [
        (None, 401, MISSING),
        ("", 401, MISSING),
        ("Bearer sk-workspace_wrong", 401, INVALID),
        (f"Bearer {DEMO_API_KEY[:-1]}", 401, INVALID),
        (f"Bearer {DEMO_API_KEY}x", 401, INVALID),
        (f"Basic {DEMO_API_KEY}", 401, INVALID),
        (DEMO_API_KEY, 401, INVALID),
        (f"Bearer {DEMO_API_KEY}", 200, None),
        (f"bearer {DEMO_API_KEY}", 200, None),
    ],
)
def test_auth(api: Api, authorization: str | None, status: int, body: dict | None) -> None:
    response = api.call("GET", f"/api/v1/leads/{SEED_ID}", key=None, authorization=authorization)
    assert response.status_code == status
    if body is not None:
        assert response.json() == body


def test_auth_is_checked_before_routing(api: Api) -> None:
    assert api.call("GET", "/nowhere", key=None).json() == MISSING


def test_key_rotation_takes_effect_at_once(api: Api) -> None:
    new_key = "sk-workspace_" + "r" * 51
    api.app.api_key = new_key
    try:
        assert api.call("GET", f"/api/v1/leads/{SEED_ID}").json() == INVALID
        assert api.call("GET", f"/api/v1/leads/{SEED_ID}", key=new_key).status_code == 200
    finally:
        api.app.api_key = DEMO_API_KEY


# --- get lead ---


def test_get_seed_lead_is_the_seed_page_answer(api: Api) -> None:
    response = api.call("GET", f"/api/v1/leads/{SEED_ID}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.json() == {"success": True, "data": SEED_LEAD}
    data = response.json()["data"]
    assert list(data) == list(SEED_LEAD)
    assert list(data["metadata"]) == list(SEED_LEAD["metadata"])


def test_get_non_latin_lead_is_utf8(api: Api) -> None:
    lead = next(lead for lead in demo_leads(today=TODAY) if lead["name"] == "山田 太郎")
    response = api.call("GET", f"/api/v1/leads/{lead['id']}")
    assert response.json()["data"] == lead
    assert "山田".encode() in response.content


@pytest.mark.parametrize(
    ("path_id", "lead_id"),
    [
        ("invalid-id", "invalid-id"),
        ("", ""),
        ("lead_", "lead_"),
        ("LEAD_abc123", "LEAD_abc123"),
        ("lead_abc-123", "lead_abc-123"),
        ("lead_abc_123", "lead_abc_123"),
        ("lead_ab%20c", "lead_ab c"),
        ("lead_abc%0A", "lead_abc\n"),
        ("lead_%C3%BCber", "lead_über"),
        ("lead_1234567890abcdef%3Cscript%3E", "lead_1234567890abcdef<script>"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_invalid_id_format_is_the_seed_answer(
    api: Api, method: str, path_id: str, lead_id: str
) -> None:
    response = api.call(method, f"/api/v1/leads/{path_id}", json={"name": "x"})
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "error": "Invalid lead ID format",
        "code": "INVALID_ID_FORMAT",
        "details": {
            "leadId": lead_id,
            "expected": "lead_[alphanumeric string]",
            "message": "Lead IDs must start with 'lead_' followed by alphanumeric characters",
        },
    }


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_unknown_lead_is_the_seed_404(api: Api, method: str) -> None:
    response = api.call(method, "/api/v1/leads/lead_nonexistent123", json={"name": "x"})
    assert response.status_code == 404
    assert response.json() == {
        "success": False,
        "error": "Lead not found",
        "code": "LEAD_NOT_FOUND",
        "details": {
            "leadId": "lead_nonexistent123",
            "message": "No lead found with this ID in your workspace",
        },
    }


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/api/v1/lead",
        f"/api/v1/leads/{SEED_ID}/notes",
        "/api/v2/leads",
        "/api/v1/chatbots/bot1/leads",
    ],
)
def test_unknown_path_is_404_not_found(api: Api, path: str) -> None:
    response = api.call("GET", path)
    assert response.status_code == 404
    body = response.json()
    assert (body["success"], body["code"]) == (False, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PATCH", f"/api/v1/leads/{SEED_ID}", "GET, PUT, DELETE"),
        ("POST", f"/api/v1/leads/{SEED_ID}", "GET, PUT, DELETE"),
        ("PUT", "/api/v1/leads", "GET, POST"),
        ("DELETE", "/api/v1/leads", "GET, POST"),
    ],
)
def test_wrong_method_is_405(api: Api, method: str, path: str, allow: str) -> None:
    response = api.call(method, path)
    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    body = response.json()
    assert (body["success"], body["code"]) == (False, "METHOD_NOT_ALLOWED")


# --- list leads ---


def list_leads(api: Api, **params: Any) -> dict[str, Any]:
    response = api.call("GET", "/api/v1/leads", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    return body["data"]


def test_list_defaults_newest_first_essential_fields(api: Api) -> None:
    data = list_leads(api)
    total = len(demo_leads(today=TODAY))
    assert data["pagination"] == {
        "page": 1,
        "limit": 20,
        "total": total,
        "totalPages": 3,
        "hasNext": True,
        "hasPrev": False,
    }
    items = data["leads"]
    assert len(items) == 20
    created = [item["createdAt"] for item in items]
    assert created == sorted(created, reverse=True)
    for item in items:
        assert list(item) == [
            "id",
            "name",
            "email",
            "phone",
            "source",
            "status",
            "metadata",
            "createdAt",
            "updatedAt",
        ]
        full = by_id(item["id"])
        assert item["metadata"] == {
            key: full["metadata"][key]
            for key in ("company", "job_title", "follow_up_date")
            if key in full["metadata"]
        }
        assert {key: value for key, value in item.items() if key != "metadata"} == {
            key: full[key] for key in item if key != "metadata"
        }


@pytest.mark.parametrize(
    ("params", "expected_names"),
    [
        ({"search": "john"}, {"John Doe"}),
        ({"search": "JOHN.DOE@EXAMPLE"}, {"John Doe"}),
        ({"search": "山田"}, {"山田 太郎"}),
        ({"search": "savanna-pay"}, {"Aisha Bello"}),
        ({"search": "анна"}, {"Анна Смирнова"}),
        ({"status": "lost", "source": "chatbot"}, {"Yuki Tanaka"}),
        ({"status": "follow_up", "search": "GREEN"}, {"Rachel Green"}),
        ({"status": "new", "search": "green"}, set()),
        ({"status": "won"}, set()),
        ({"search": "nobody-like-this"}, set()),
    ],
)
def test_list_filters(api: Api, params: dict[str, str], expected_names: set[str]) -> None:
    data = list_leads(api, limit=100, **params)
    assert {item["name"] for item in data["leads"]} == expected_names
    assert data["pagination"]["total"] == len(expected_names)


@pytest.mark.parametrize(
    "status", ["new", "contacted", "qualified", "converted", "lost", "follow_up"]
)
def test_list_status_filter_matches_demo_data(api: Api, status: str) -> None:
    expected = {lead["id"] for lead in demo_leads(today=TODAY) if lead["status"] == status}
    data = list_leads(api, status=status, limit=100)
    assert {item["id"] for item in data["leads"]} == expected
    assert expected


def test_list_source_filter(api: Api) -> None:
    data = list_leads(api, source="website", limit=100)
    assert data["leads"]
    assert {item["source"] for item in data["leads"]} == {"website"}


def test_list_pages_cover_everything_once(api: Api) -> None:
    total = len(demo_leads(today=TODAY))
    seen: list[str] = []
    page = 1
    while True:
        data = list_leads(api, page=page, limit=7)
        pagination = data["pagination"]
        assert pagination["totalPages"] == -(-total // 7)
        assert pagination["hasPrev"] is (page > 1)
        seen += [item["id"] for item in data["leads"]]
        if not pagination["hasNext"]:
            break
        page += 1
    assert page == pagination["totalPages"]
    assert sorted(seen) == sorted(lead["id"] for lead in demo_leads(today=TODAY))
    beyond = list_leads(api, page=page + 1, limit=7)
    assert beyond["leads"] == []
    assert (beyond["pagination"]["hasNext"], beyond["pagination"]["hasPrev"]) == (False, True)


def test_list_limit_is_clamped_to_100(api: Api) -> None:
    many = [
        {**SEED_LEAD, "id": f"lead_bulk{i:04d}", "createdAt": f"2024-02-01T00:00:{i % 60:02d}.000Z"}
        for i in range(150)
    ]
    api.app.set_leads(many)
    data = list_leads(api, limit=500)
    assert data["pagination"]["limit"] == 100
    assert len(data["leads"]) == 100
    assert (data["pagination"]["total"], data["pagination"]["totalPages"]) == (150, 2)


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"page": "0"}, "page"),
        ({"page": "-1"}, "page"),
        ({"page": "abc"}, "page"),
        ({"page": "1.5"}, "page"),
        ({"page": "²"}, "page"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": " 5"}, "limit"),
    ],
)
def test_list_bad_parameters_are_400(api: Api, params: dict[str, str], parameter: str) -> None:
    response = api.call("GET", "/api/v1/leads", params=params)
    assert response.status_code == 400
    body = response.json()
    assert (body["success"], body["code"]) == (False, "INVALID_PARAMETER")
    assert body["details"]["parameter"] == parameter


# --- update ---


def put(api: Api, lead_id: str, body: Any) -> requests.Response:
    return api.call("PUT", f"/api/v1/leads/{lead_id}", json=body)


def test_update_merges_metadata_and_replaces_the_rest(api: Api) -> None:
    response = put(
        api,
        SEED_ID,
        {
            "status": "qualified",
            "phone": None,
            "metadata": {
                "company": "New Corp",
                "interests": ["product_c"],
                "notes": None,
                "lead_score": 90,
            },
        },
    )
    assert response.status_code == 200
    lead = response.json()["data"]
    expected_metadata = {**SEED_LEAD["metadata"], "company": "New Corp", "interests": ["product_c"]}
    del expected_metadata["notes"]
    expected_metadata["lead_score"] = 90
    assert lead["metadata"] == expected_metadata
    assert (lead["status"], lead["phone"]) == ("qualified", None)
    assert lead["name"] == SEED_LEAD["name"]
    assert lead["createdAt"] == SEED_LEAD["createdAt"]
    assert lead["updatedAt"] != SEED_LEAD["updatedAt"]
    assert ISO_MS_Z.fullmatch(lead["updatedAt"])
    assert list(lead) == list(SEED_LEAD)
    assert api.call("GET", f"/api/v1/leads/{SEED_ID}").json()["data"] == lead


def test_update_replaces_nested_objects_and_can_clear_metadata(api: Api) -> None:
    lead = {**SEED_LEAD, "metadata": {"requirements": {"seats": 25, "sso": True}, "a": 1}}
    api.app.set_leads([lead])
    merged = put(api, SEED_ID, {"metadata": {"requirements": {"seats": 3}}}).json()["data"]
    assert merged["metadata"] == {"requirements": {"seats": 3}, "a": 1}
    cleared = put(api, SEED_ID, {"metadata": None}).json()["data"]
    assert cleared["metadata"] is None
    refilled = put(api, SEED_ID, {"metadata": {"b": [1, 2]}}).json()["data"]
    assert refilled["metadata"] == {"b": [1, 2]}


def test_update_uses_the_injected_clock() -> None:
    clock = FakeClock(T0 + 0.123)
    with serve(SandboxApp(today=TODAY, clock=clock)) as running:
        lead = put(Api(running), SEED_ID, {"status": "lost"}).json()["data"]
    assert lead["updatedAt"] == "2023-11-14T22:13:20.123Z"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"id": "lead_other"}, "VALIDATION_ERROR", "id"),
        ({"workspaceId": "ws_x"}, "VALIDATION_ERROR", "workspaceId"),
        ({"createdAt": "2024-01-01T00:00:00.000Z"}, "VALIDATION_ERROR", "createdAt"),
        ({"updatedAt": "2024-01-01T00:00:00.000Z"}, "VALIDATION_ERROR", "updatedAt"),
        ({"status": "won"}, "VALIDATION_ERROR", "status"),
        ({"status": None}, "VALIDATION_ERROR", "status"),
        ({"name": 5}, "VALIDATION_ERROR", "name"),
        ({"metadata": ["a"]}, "VALIDATION_ERROR", "metadata"),
        ({"favourite_colour": "red"}, "VALIDATION_ERROR", "favourite_colour"),
        ([{"status": "new"}], "VALIDATION_ERROR", "body"),
        ("qualified", "VALIDATION_ERROR", "body"),
    ],
)
def test_update_rejects_bad_bodies(api: Api, body: Any, code: str, field: str) -> None:
    response = put(api, SEED_ID, body)
    assert response.status_code == 400
    payload = response.json()
    assert (payload["success"], payload["code"], payload["details"]["field"]) == (
        False,
        code,
        field,
    )
    assert api.call("GET", f"/api/v1/leads/{SEED_ID}").json()["data"] == SEED_LEAD


@pytest.mark.parametrize("raw", [b"", b"not json", b"{", b"\xff\xfe"])
def test_update_rejects_non_json(api: Api, raw: bytes) -> None:
    response = api.call("PUT", f"/api/v1/leads/{SEED_ID}", data=raw)
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_JSON"


# --- create and delete ---


def test_create_then_get(api: Api) -> None:
    response = api.call(
        "POST", "/api/v1/leads", json={"name": "Ada Lovelace", "email": "ada@example.com"}
    )
    assert response.status_code == 201
    lead = response.json()["data"]
    assert re.fullmatch(r"lead_[A-Za-z0-9]+", lead["id"])
    assert (lead["status"], lead["phone"], lead["metadata"]) == ("new", None, {})
    assert ISO_MS_Z.fullmatch(lead["createdAt"])
    assert lead["createdAt"] == lead["updatedAt"]
    assert api.call("GET", f"/api/v1/leads/{lead['id']}").json()["data"] == lead


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "ada@example.com"}, "name"),
        ({"name": "Ada"}, "email"),
        ({"name": "", "email": "ada@example.com"}, "name"),
        ({"name": "Ada", "email": "a@example.com", "id": "lead_mine"}, "id"),
        ({"name": "Ada", "email": "a@example.com", "status": "hot"}, "status"),
    ],
)
def test_create_validates(api: Api, body: dict[str, Any], field: str) -> None:
    response = api.call("POST", "/api/v1/leads", json=body)
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["details"]["field"]) == (
        "VALIDATION_ERROR",
        field,
    )


def test_delete_is_permanent(api: Api) -> None:
    response = api.call("DELETE", f"/api/v1/leads/{SEED_ID}")
    assert response.status_code == 200
    assert response.json() == {"success": True, "data": {"id": SEED_ID, "deleted": True}}
    assert api.call("GET", f"/api/v1/leads/{SEED_ID}").status_code == 404
    assert api.call("DELETE", f"/api/v1/leads/{SEED_ID}").status_code == 404


# --- rate limit ---


@pytest.mark.parametrize(
    ("method", "path", "key", "status"),
    [
        ("GET", f"/api/v1/leads/{SEED_ID}", DEMO_API_KEY, 200),
        ("GET", "/api/v1/leads", DEMO_API_KEY, 200),
        ("GET", f"/api/v1/leads/{SEED_ID}", None, 401),
        ("GET", f"/api/v1/leads/{SEED_ID}", "sk-workspace_wrong", 401),
        ("GET", "/api/v1/leads/bad-id", DEMO_API_KEY, 400),
        ("GET", "/api/v1/leads?page=0", DEMO_API_KEY, 400),
        ("GET", "/api/v1/leads/lead_nonexistent123", DEMO_API_KEY, 404),
        ("GET", "/elsewhere", DEMO_API_KEY, 404),
        ("PATCH", "/api/v1/leads", DEMO_API_KEY, 405),
        ("PUT", f"/api/v1/leads/{SEED_ID}", DEMO_API_KEY, 400),
    ],
)
def test_every_answer_carries_rate_limit_headers(
    api: Api, method: str, path: str, key: str | None, status: int
) -> None:
    before = time.time()
    first = api.call(method, path, key=key)
    second = api.call(method, path, key=key)
    assert (first.status_code, second.status_code) == (status, status)
    for response in (first, second):
        values = {name: int(response.headers[name]) for name in RATE_HEADERS}
        assert values["X-RateLimit-Limit"] == 1000
        assert values["X-RateLimit-Used"] + values["X-RateLimit-Remaining"] == 1000
        assert before + HOUR - 60 < values["X-RateLimit-Reset"] <= time.time() + HOUR + 1
    assert int(second.headers["X-RateLimit-Used"]) == int(first.headers["X-RateLimit-Used"]) + 1


def rate(response: requests.Response) -> tuple[int, ...]:
    return (response.status_code, *(int(response.headers[name]) for name in RATE_HEADERS[1:]))


def test_rate_limit_window_slides(limited: tuple[Api, FakeClock]) -> None:
    api, clock = limited
    seed = f"/api/v1/leads/{SEED_ID}"
    reset = int(T0) + HOUR
    # (status, remaining, reset, used) after each call, at clock offsets from T0.
    for offset, expected in [
        (0, (200, 2, reset, 1)),
        (10, (200, 1, reset, 2)),
        (20, (200, 0, reset, 3)),
    ]:
        clock.now = T0 + offset
        assert rate(api.call("GET", seed)) == expected

    clock.now = T0 + 30
    refused = api.call("GET", seed)
    assert rate(refused) == (429, 0, reset, 3)
    assert refused.headers["Retry-After"] == str(HOUR - 30)
    assert refused.headers["X-RateLimit-Limit"] == "3"
    body = refused.json()
    assert (body["success"], body["code"]) == (False, "RATE_LIMIT_EXCEEDED")

    # The first call leaves the window: exactly one slot is free again, until T0 + 10 leaves.
    clock.now = T0 + HOUR
    assert rate(api.call("GET", seed)) == (200, 0, reset + 10, 3)
    again = api.call("GET", seed)
    assert rate(again) == (429, 0, reset + 10, 3)
    assert again.headers["Retry-After"] == "10"


def test_rate_limit_is_per_key(limited: tuple[Api, FakeClock]) -> None:
    api, _clock = limited
    for _ in range(3):
        api.call("GET", "/api/v1/leads")
    assert api.call("GET", "/api/v1/leads").status_code == 429
    other = api.call("GET", "/api/v1/leads", key="sk-workspace_someone_else")
    assert other.status_code == 401
    assert other.headers["X-RateLimit-Used"] == "1"
    assert api.call("GET", "/api/v1/leads", key=None).status_code == 401


# --- scripted faults ---


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (502, "<html><body>Bad Gateway</body></html>", {"Content-Type": "text/html"}),
        (503, b"", {}),
        (500, '{"success": false}', {"Content-Type": "application/json"}),
        (504, "upstream timed out", {"Content-Type": "text/plain"}),
        (200, '{"leads": []}', {"Content-Type": "application/json"}),
        (200, '{"success": true, "data": "nope"}', {"Content-Type": "application/json"}),
        (429, "slow down", {"Retry-After": "120"}),
        (429, "", {}),
    ],
)
def test_inject_answers_raw_once(
    api: Api, status: int, body: bytes | str, headers: dict[str, str]
) -> None:
    api.app.inject(status=status, body=body, headers=headers)
    faulty = api.call("GET", f"/api/v1/leads/{SEED_ID}")
    assert faulty.status_code == status
    assert faulty.content == (body.encode() if isinstance(body, str) else body)
    for name, value in headers.items():
        assert faulty.headers[name] == value
    assert not any(name in faulty.headers for name in RATE_HEADERS)
    normal = api.call("GET", f"/api/v1/leads/{SEED_ID}")
    assert normal.json() == {"success": True, "data": SEED_LEAD}
    assert len(api.app.requests) == 2


def test_inject_times_and_path_filter(api: Api) -> None:
    api.app.inject(status=503, path_contains="lead_nonexistent", times=2)
    assert api.call("GET", f"/api/v1/leads/{SEED_ID}").status_code == 200
    assert api.call("GET", "/api/v1/leads/lead_nonexistent1").status_code == 503
    assert api.call("GET", "/api/v1/leads/lead_nonexistent2").status_code == 503
    assert api.call("GET", "/api/v1/leads/lead_nonexistent3").status_code == 404


def test_inject_delay(api: Api) -> None:
    api.app.inject(status=504, delay=0.3)
    started = time.monotonic()
    assert api.call("GET", "/api/v1/leads").status_code == 504
    assert time.monotonic() - started >= 0.3


def test_inject_trickle_sends_the_body_slowly(api: Api) -> None:
    api.app.inject(status=200, body=b"12345", trickle=0.05)
    started = time.monotonic()
    assert api.call("GET", "/api/v1/leads").content == b"12345"
    assert time.monotonic() - started >= 0.25


def test_inject_trickle_trips_a_read_timeout(api: Api) -> None:
    api.app.inject(status=200, body=b"x" * 20, trickle=0.5)
    with pytest.raises(requests.RequestException):
        api.call("GET", "/api/v1/leads", timeout=(1, 0.2))


def test_slow_answer_does_not_block_others(api: Api) -> None:
    api.app.inject(status=503, path_contains="lead_slow", delay=1.5)
    slow = threading.Thread(target=api.call, args=("GET", "/api/v1/leads/lead_slow"))
    slow.start()
    time.sleep(0.1)
    started = time.monotonic()
    assert api.call("GET", f"/api/v1/leads/{SEED_ID}").status_code == 200
    assert time.monotonic() - started < 1.0
    slow.join()


def test_requests_are_recorded(api: Api) -> None:
    api.call("GET", "/api/v1/leads", params={"page": "2", "search": "ann"})
    api.call("DELETE", "/api/v1/leads/lead_%C3%BC", key=None)
    assert api.app.requests == [
        RecordedRequest(
            method="GET",
            path="/api/v1/leads",
            query="page=2&search=ann",
            authorization=f"Bearer {DEMO_API_KEY}",
        ),
        RecordedRequest(method="DELETE", path="/api/v1/leads/lead_ü", query="", authorization=None),
    ]
    api.app.reset_log()
    assert api.app.requests == []


def test_concurrent_requests_are_all_recorded(api: Api) -> None:
    threads = [
        threading.Thread(target=api.call, args=("GET", f"/api/v1/leads/{SEED_ID}"))
        for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(api.app.requests) == 20


def test_latency_delays_every_answer() -> None:
    with serve(SandboxApp(today=TODAY, latency=0.2)) as running:
        started = time.monotonic()
        assert Api(running).call("GET", "/api/v1/leads", key=None).status_code == 401
        assert time.monotonic() - started >= 0.2


def test_stop_closes_the_port() -> None:
    running = serve()
    assert running.base_url.startswith("http://127.0.0.1:")
    assert not running.base_url.endswith("/")
    running.stop()
    with pytest.raises(requests.ConnectionError):
        Api(running).call("GET", "/api/v1/leads", timeout=1)


def test_set_leads_copies(api: Api) -> None:
    mine = {**SEED_LEAD, "metadata": dict(SEED_LEAD["metadata"])}
    api.app.set_leads([mine])
    put(api, SEED_ID, {"metadata": {"company": "Changed"}})
    assert mine["metadata"]["company"] == "Tech Corp"


# --- demo data ---


def follow_up_kind(lead: dict[str, Any]) -> str:
    raw = lead["metadata"].get("follow_up_date")
    if raw is None:
        return "none"
    day = datetime.date.fromisoformat(raw)
    return "overdue" if day < TODAY else "today" if day == TODAY else "upcoming"


def test_demo_leads_shape() -> None:
    leads = demo_leads(today=TODAY)
    assert leads[0] == SEED_LEAD
    assert len(leads) >= 41
    assert leads == demo_leads(today=TODAY)
    ids = [lead["id"] for lead in leads]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"lead_[A-Za-z0-9]+", lead_id) for lead_id in ids)
    assert {lead["status"] for lead in leads} == {
        "new",
        "contacted",
        "qualified",
        "converted",
        "lost",
        "follow_up",
    }
    for lead in leads[1:]:
        assert list(lead) == list(SEED_LEAD)
        assert lead["workspaceId"] == "ws_demo_workspace"
        assert ISO_MS_Z.fullmatch(lead["createdAt"])
        assert ISO_MS_Z.fullmatch(lead["updatedAt"])
        assert lead["createdAt"] <= lead["updatedAt"] <= f"{TODAY.isoformat()}T23:59:59.999Z"
    assert any(lead["phone"] is None for lead in leads)


def test_demo_follow_ups_cover_every_kind() -> None:
    leads = demo_leads(today=TODAY)
    kinds = [follow_up_kind(lead) for lead in leads[1:]]
    assert {"overdue", "today", "upcoming", "none"} <= set(kinds)
    overdue_days = {
        (TODAY - datetime.date.fromisoformat(lead["metadata"]["follow_up_date"])).days
        for lead in leads[1:]
        if follow_up_kind(lead) == "overdue"
    }
    assert len(overdue_days) >= 3
    # Relative to today: another day moves every follow-up date by the same amount.
    later = demo_leads(today=TODAY + datetime.timedelta(days=5))
    for before, after in zip(leads[1:], later[1:], strict=True):
        if "follow_up_date" in before["metadata"]:
            shift = datetime.date.fromisoformat(
                after["metadata"]["follow_up_date"]
            ) - datetime.date.fromisoformat(before["metadata"]["follow_up_date"])
            assert shift.days == 5


def test_demo_metadata_is_varied() -> None:
    leads = demo_leads(today=TODAY)
    values = [value for lead in leads for value in lead["metadata"].values()]
    assert any(isinstance(value, bool) for value in values)
    assert any(value is None for value in values)
    assert any(isinstance(value, dict) for value in values)
    assert any(isinstance(value, list) and value and isinstance(value[0], dict) for value in values)
    assert any(isinstance(value, int) and not isinstance(value, bool) for value in values)
    assert any(isinstance(value, float) for value in values)
    assert any(
        isinstance(value, str) and value.startswith("https://www.linkedin.com/in/")
        for value in values
    )
    assert any(isinstance(value, str) and "\n" in value and len(value) > 200 for value in values)
    keys = {key for lead in leads for key in lead["metadata"]}
    documented = {
        "utm_source",
        "utm_campaign",
        "interests",
        "company",
        "job_title",
        "last_interaction",
        "notes",
        "follow_up_date",
        "lead_score",
        "budget",
        "timeline",
    }
    assert documented <= keys
    assert len(keys - documented) >= 5


@pytest.mark.parametrize("script", ["CJK UNIFIED", "ARABIC", "GREEK", "CYRILLIC"])
def test_demo_names_include_non_latin_scripts(script: str) -> None:
    names = [lead["name"] for lead in demo_leads(today=TODAY)]
    assert any(
        any(unicodedata.name(char, "").startswith(script) for char in name) for name in names
    )


def test_demo_api_key_looks_like_a_real_one() -> None:
    assert len(DEMO_API_KEY) == 64
    assert DEMO_API_KEY.startswith("sk-workspace_demo")


# --- command line ---


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        (DEMO_API_KEY, DEMO_API_KEY),
        ("sk-workspace_" + "s" * 47 + "wxyz", "sk-workspace_…wxyz"),
        ("other-secret-1234", "…1234"),
        ("short", "…"),
    ],
)
def test_mask_key(key: str, shown: str) -> None:
    assert mask_key(key) == shown


def test_command_line_serves_until_ctrl_c() -> None:
    secret = "sk-workspace_" + "q" * 47 + "9876"
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and module, fixed arguments)
        [sys.executable, "-m", "sandbox", "--port", "0", "--api-key", secret, "--rate-limit", "7"],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        base_url = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert base_url, line
        assert secret not in line
        assert "…9876" in line
        session = requests.Session()
        session.trust_env = False
        response = session.get(
            f"{base_url.group()}/api/v1/leads/{SEED_ID}",
            headers={"Authorization": f"Bearer {secret}"},
            timeout=5,
        )
        assert (response.status_code, response.headers["X-RateLimit-Limit"]) == (200, "7")
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=10)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0
    assert "Traceback" not in err


SEED_PAGE = Path(__file__).resolve().parents[2] / "shared" / "seed" / "get-lead.txt"


@pytest.mark.skipif(
    not SEED_PAGE.exists(), reason="the seed page (../shared) is not beside this clone"
)
def test_seed_lead_is_the_seed_pages_json() -> None:
    text = SEED_PAGE.read_text()
    start = text.index("{", text.index("Success Response (200 OK)"))
    envelope, _ = json.JSONDecoder().raw_decode(text[start:])
    assert envelope["data"] == SEED_LEAD
    assert list(envelope["data"]) == list(SEED_LEAD)
