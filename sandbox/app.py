"""The stand-in PollyBot leads API: a framework-free WSGI app (stdlib only).

It follows the contract in docs (shared/pollybot-api.md) and the seed page
(seed/get-lead.txt), which wins where the two disagree. Choices the docs leave open,
made here and relied on by tests:

- Every request counts against the sliding one-hour window of the key it presents
  (a missing header counts as its own key), before authentication and routing, so
  every answer, errors and 429 included, carries the X-RateLimit-* headers.
  Requests refused with 429 are not counted.
- ``limit`` above 100 is clamped to 100 (the docs' maximum); ``page`` or ``limit``
  that is not a whole number >= 1 is a 400 ``INVALID_PARAMETER``.
- Lists are ordered newest ``createdAt`` first (ties: higher ID first).
- PUT merges ``metadata`` one level deep: a key set to null is removed, any other
  value (lists and nested objects included) replaces the old one.
- Faults scripted with :meth:`SandboxApp.inject` are answered raw: only the given
  status, headers and body, no rate-limit headers, and they are not counted.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import datetime
import hmac
import http
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from sandbox.data import DEMO_API_KEY, DEMO_WORKSPACE_ID, STATUSES, demo_leads

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

# The docs: 1,000 requests per hour per key, in a sliding window.
DEFAULT_RATE_LIMIT = 1000
RATE_LIMIT_WINDOW_SECONDS = 3600
# The docs: "limit (max 100)"; the default page size is the docs' example.
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
# A lead is a few kB; anything far larger is a client bug, not a lead.
MAX_BODY_BYTES = 1_000_000

LEAD_ID_PATTERN = re.compile(r"lead_[A-Za-z0-9]+")
_LEADS_PATH = "/api/v1/leads"
_LEAD_PATH_PREFIX = _LEADS_PATH + "/"

# Fields the server owns: a PUT or POST that sets them is refused.
_READ_ONLY_FIELDS = ("id", "workspaceId", "createdAt", "updatedAt")
_WRITABLE_FIELDS = ("name", "email", "phone", "source", "status", "metadata")
_TEXT_FIELDS = ("name", "email", "phone", "source")
# The list endpoint returns only these (the seed: "the list endpoint ... may only return
# essential fields for performance").
_LIST_FIELDS = (
    "id",
    "name",
    "email",
    "phone",
    "source",
    "status",
    "metadata",
    "createdAt",
    "updatedAt",
)
_LIST_METADATA_KEYS = ("company", "job_title", "follow_up_date")

_JSON_CONTENT_TYPE = "application/json; charset=utf-8"


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """One request as the sandbox received it (the path percent-decoded)."""

    method: str
    path: str
    query: str
    authorization: str | None


@dataclasses.dataclass
class _Fault:
    status: int
    body: bytes
    headers: dict[str, str]
    path_contains: str | None
    remaining: int
    delay: float
    trickle: float | None


class _ApiError(Exception):
    """An error answer in the envelope; raised inside handlers, turned into a response."""

    def __init__(
        self,
        *,
        status: int,
        error: str,
        code: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code)
        self.status = status
        self.body: dict[str, Any] = {"success": False, "error": error, "code": code}
        if details is not None:
            self.body["details"] = details
        self.headers = headers or {}


@dataclasses.dataclass(frozen=True)
class _Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


def _status_line(status: int) -> str:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return f"{status} {phrase}"


def _iso_now(now: float) -> str:
    moment = datetime.datetime.fromtimestamp(now, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}Z"


def _validation_error(*, field: str, message: str) -> _ApiError:
    return _ApiError(
        status=400,
        error="Validation failed",
        code="VALIDATION_ERROR",
        details={"field": field, "message": message},
    )


class SandboxApp:
    """A WSGI callable serving the PollyBot leads API from memory.

    ``api_key`` may be changed at any time (tests simulate key rotation with it);
    ``requests`` records every request received, faults included.
    """

    def __init__(
        self,
        *,
        api_key: str = DEMO_API_KEY,
        leads: list[dict[str, Any]] | None = None,
        today: datetime.date | None = None,
        rate_limit: int = DEFAULT_RATE_LIMIT,
        latency: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_key = api_key
        self.rate_limit = rate_limit
        self.latency = latency
        self.requests: list[RecordedRequest] = []
        self._clock = clock
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._windows: dict[str, collections.deque[float]] = {}
        self._leads: dict[str, dict[str, Any]] = {}
        if leads is None:
            leads = demo_leads(today=today or datetime.date.fromtimestamp(clock()))
        self.set_leads(leads)

    # --- the test-facing controls ---

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def set_leads(self, leads: list[dict[str, Any]]) -> None:
        """Replace the whole workspace (deep-copied: the caller's dicts stay untouched)."""
        with self._lock:
            self._leads = {str(lead.get("id")): copy.deepcopy(lead) for lead in leads}

    def leads_snapshot(self) -> list[dict[str, Any]]:
        """The workspace as it is now (deep copies), in insertion order: for tests' checks."""
        with self._lock:
            return copy.deepcopy(list(self._leads.values()))

    def inject(
        self,
        *,
        status: int,
        body: bytes | str = b"",
        headers: dict[str, str] | None = None,
        path_contains: str | None = None,
        times: int = 1,
        delay: float = 0.0,
        trickle: float | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with this raw response.

        A request matches when its path contains ``path_contains`` (any request if
        None). The answer is sent after ``delay`` seconds; with ``trickle`` the body is
        sent one byte every ``trickle`` seconds. Faults are used in the order injected.
        """
        raw = body.encode("utf-8") if isinstance(body, str) else body
        fault = _Fault(
            status=status,
            body=raw,
            headers=dict(headers or {}),
            path_contains=path_contains,
            remaining=times,
            delay=delay,
            trickle=trickle,
        )
        with self._lock:
            self._faults.append(fault)

    # --- WSGI ---

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        # PEP 3333: PATH_INFO holds the URL-decoded bytes as latin-1; lead IDs may be UTF-8.
        path = str(environ.get("PATH_INFO", "")).encode("latin-1").decode("utf-8", "replace")
        query = str(environ.get("QUERY_STRING", ""))
        authorization = environ.get("HTTP_AUTHORIZATION")
        recorded = RecordedRequest(
            method=method, path=path, query=query, authorization=authorization
        )
        with self._lock:
            self.requests.append(recorded)
            fault = self._take_fault(path)
        if self.latency > 0:
            time.sleep(self.latency)
        if fault is not None:
            return self._answer_fault(fault, start_response)

        rate_headers: dict[str, str] = {}
        try:
            rate_headers = self._count_request(authorization or "")
            self._check_auth(authorization)
            response = self._route(method=method, path=path, query=query, environ=environ)
        except _ApiError as error:
            response = _Response(status=error.status, body=error.body, headers=error.headers)
        payload = json.dumps(response.body, ensure_ascii=False).encode("utf-8")
        headers = {
            "Content-Type": _JSON_CONTENT_TYPE,
            "Content-Length": str(len(payload)),
            **rate_headers,
            **response.headers,
        }
        start_response(_status_line(response.status), list(headers.items()))
        return [payload]

    def _take_fault(self, path: str) -> _Fault | None:
        # Called with the lock held.
        for fault in self._faults:
            if fault.path_contains is None or fault.path_contains in path:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _answer_fault(self, fault: _Fault, start_response: StartResponse) -> Iterable[bytes]:
        if fault.delay > 0:
            time.sleep(fault.delay)
        headers = dict(fault.headers)
        if not any(name.lower() == "content-length" for name in headers):
            headers["Content-Length"] = str(len(fault.body))
        start_response(_status_line(fault.status), list(headers.items()))
        if fault.trickle is None:
            return [fault.body]
        return self._trickle(fault.body, fault.trickle)

    @staticmethod
    def _trickle(body: bytes, interval: float) -> Iterator[bytes]:
        for index in range(len(body)):
            time.sleep(interval)
            yield body[index : index + 1]

    # --- rate limit and auth ---

    def _count_request(self, key: str) -> dict[str, str]:
        """Count one request in the key's sliding window; raise 429 when it is full."""
        now = self._clock()
        with self._lock:
            window = self._windows.setdefault(key, collections.deque())
            while window and window[0] <= now - RATE_LIMIT_WINDOW_SECONDS:
                window.popleft()
            limited = len(window) >= self.rate_limit
            if not limited:
                window.append(now)
            used = len(window)
            oldest = window[0] if window else now
        reset = oldest + RATE_LIMIT_WINDOW_SECONDS
        headers = {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(self.rate_limit - used, 0)),
            "X-RateLimit-Reset": str(math.ceil(reset)),
            "X-RateLimit-Used": str(used),
        }
        if limited:
            retry_after = max(math.ceil(reset - now), 1)
            raise _ApiError(
                status=429,
                error="Rate limit exceeded",
                code="RATE_LIMIT_EXCEEDED",
                details={
                    "limit": self.rate_limit,
                    "retryAfter": retry_after,
                    "message": f"Too many requests: at most {self.rate_limit} an hour per API key",
                },
                headers={**headers, "Retry-After": str(retry_after)},
            )
        return headers

    def _check_auth(self, authorization: str | None) -> None:
        if not authorization:
            raise _ApiError(
                status=401, error="Missing authorization header", code="MISSING_AUTH_HEADER"
            )
        scheme, _, token = authorization.partition(" ")
        valid = scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode("utf-8"), self.api_key.encode("utf-8")
        )
        if not valid:
            raise _ApiError(status=401, error="Invalid API key", code="INVALID_API_KEY")

    # --- routing ---

    def _route(self, *, method: str, path: str, query: str, environ: WSGIEnvironment) -> _Response:
        if path == _LEADS_PATH:
            if method == "GET":
                return self._list_leads(query)
            if method == "POST":
                return self._create_lead(self._read_json_object(environ))
            raise self._method_not_allowed(method, allowed="GET, POST")
        if path.startswith(_LEAD_PATH_PREFIX) and "/" not in path[len(_LEAD_PATH_PREFIX) :]:
            lead_id = path[len(_LEAD_PATH_PREFIX) :]
            if method == "GET":
                return _Response(200, {"success": True, "data": self._find_lead(lead_id)})
            if method == "PUT":
                changes = self._read_json_object(environ)
                return self._update_lead(lead_id, changes)
            if method == "DELETE":
                return self._delete_lead(lead_id)
            raise self._method_not_allowed(method, allowed="GET, PUT, DELETE")
        raise _ApiError(
            status=404,
            error="Not found",
            code="NOT_FOUND",
            details={"path": path, "message": "No such endpoint"},
        )

    @staticmethod
    def _method_not_allowed(method: str, *, allowed: str) -> _ApiError:
        return _ApiError(
            status=405,
            error="Method not allowed",
            code="METHOD_NOT_ALLOWED",
            details={"method": method, "allowed": allowed},
            headers={"Allow": allowed},
        )

    @staticmethod
    def _read_json_object(environ: WSGIEnvironment) -> dict[str, Any]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_BYTES:
            raise _ApiError(status=413, error="Request body too large", code="PAYLOAD_TOO_LARGE")
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise _ApiError(
                status=400,
                error="Invalid JSON body",
                code="INVALID_JSON",
                details={"message": "The request body must be a JSON object"},
            ) from None
        if not isinstance(body, dict):
            raise _validation_error(field="body", message="The request body must be a JSON object")
        return body

    # --- leads ---

    @staticmethod
    def _check_id(lead_id: str) -> None:
        # The seed's 400 answer, word for word.
        if not LEAD_ID_PATTERN.fullmatch(lead_id):
            raise _ApiError(
                status=400,
                error="Invalid lead ID format",
                code="INVALID_ID_FORMAT",
                details={
                    "leadId": lead_id,
                    "expected": "lead_[alphanumeric string]",
                    "message": "Lead IDs must start with 'lead_' followed by alphanumeric "
                    "characters",
                },
            )

    @staticmethod
    def _not_found(lead_id: str) -> _ApiError:
        # The seed's 404 answer, word for word.
        return _ApiError(
            status=404,
            error="Lead not found",
            code="LEAD_NOT_FOUND",
            details={"leadId": lead_id, "message": "No lead found with this ID in your workspace"},
        )

    def _find_lead(self, lead_id: str) -> dict[str, Any]:
        self._check_id(lead_id)
        with self._lock:
            lead = self._leads.get(lead_id)
            if lead is not None:
                return copy.deepcopy(lead)
        raise self._not_found(lead_id)

    @staticmethod
    def _positive_int(params: dict[str, list[str]], name: str, default: int) -> int:
        values = params.get(name)
        if not values or values[0] == "":
            return default
        raw = values[0]
        if raw.isascii() and raw.isdigit() and int(raw) >= 1:
            return int(raw)
        raise _ApiError(
            status=400,
            error=f"Invalid value for '{name}'",
            code="INVALID_PARAMETER",
            details={
                "parameter": name,
                "value": raw,
                "message": f"'{name}' must be an integer >= 1",
            },
        )

    def _list_leads(self, query: str) -> _Response:
        params = parse_qs(query, keep_blank_values=True)
        page = self._positive_int(params, "page", 1)
        limit = min(self._positive_int(params, "limit", DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)
        status = (params.get("status") or [""])[0]
        source = (params.get("source") or [""])[0]
        search = (params.get("search") or [""])[0].casefold()

        with self._lock:
            leads = list(self._leads.values())
        if status:
            leads = [lead for lead in leads if lead.get("status") == status]
        if source:
            leads = [lead for lead in leads if lead.get("source") == source]
        if search:
            leads = [
                lead
                for lead in leads
                if search in str(lead.get("name") or "").casefold()
                or search in str(lead.get("email") or "").casefold()
            ]
        leads.sort(key=lambda lead: (str(lead.get("createdAt")), str(lead.get("id"))), reverse=True)

        total = len(leads)
        total_pages = math.ceil(total / limit)
        start = (page - 1) * limit
        items = [self._list_item(lead) for lead in leads[start : start + limit]]
        pagination = {
            "page": page,
            "limit": limit,
            "total": total,
            "totalPages": total_pages,
            "hasNext": page < total_pages,
            "hasPrev": page > 1,
        }
        return _Response(200, {"success": True, "data": {"leads": items, "pagination": pagination}})

    @staticmethod
    def _list_item(lead: dict[str, Any]) -> dict[str, Any]:
        item: dict[str, Any] = {}
        for field in _LIST_FIELDS:
            if field not in lead:
                continue
            value = lead[field]
            if field == "metadata" and isinstance(value, dict):
                value = {key: value[key] for key in _LIST_METADATA_KEYS if key in value}
            item[field] = copy.deepcopy(value)
        return item

    @staticmethod
    def _validate_fields(body: dict[str, Any]) -> None:
        for field in body:
            if field in _READ_ONLY_FIELDS:
                raise _validation_error(field=field, message=f"'{field}' cannot be changed")
            if field not in _WRITABLE_FIELDS:
                raise _validation_error(
                    field=field,
                    message=f"Unknown field '{field}'; allowed: {', '.join(_WRITABLE_FIELDS)}",
                )
        if "status" in body and body["status"] not in STATUSES:
            raise _validation_error(
                field="status", message=f"'status' must be one of: {', '.join(STATUSES)}"
            )
        for field in _TEXT_FIELDS:
            if field in body and body[field] is not None and not isinstance(body[field], str):
                raise _validation_error(field=field, message=f"'{field}' must be a string or null")
        if (
            "metadata" in body
            and body["metadata"] is not None
            and not isinstance(body["metadata"], dict)
        ):
            raise _validation_error(
                field="metadata", message="'metadata' must be an object or null"
            )

    def _update_lead(self, lead_id: str, changes: dict[str, Any]) -> _Response:
        self._check_id(lead_id)
        self._validate_fields(changes)
        now = _iso_now(self._clock())
        with self._lock:
            stored = self._leads.get(lead_id)
            if stored is not None:
                for field, value in changes.items():
                    if field == "metadata" and value is not None:
                        current = stored.get("metadata")
                        merged = dict(current) if isinstance(current, dict) else {}
                        for key, item in value.items():
                            if item is None:
                                merged.pop(key, None)
                            else:
                                merged[key] = copy.deepcopy(item)
                        stored["metadata"] = merged
                    else:
                        stored[field] = copy.deepcopy(value)
                stored["updatedAt"] = now
                return _Response(200, {"success": True, "data": copy.deepcopy(stored)})
        raise self._not_found(lead_id)

    def _create_lead(self, body: dict[str, Any]) -> _Response:
        self._validate_fields(body)
        for field in ("name", "email"):
            if not body.get(field):
                raise _validation_error(field=field, message=f"'{field}' is required")
        now = _iso_now(self._clock())
        lead: dict[str, Any] = {
            "id": "lead_" + uuid.uuid4().hex[:16],
            "name": body["name"],
            "email": body["email"],
            "phone": body.get("phone"),
            "source": body.get("source") or "api",
            "status": body.get("status") or "new",
            "metadata": copy.deepcopy(body.get("metadata") or {}),
            "createdAt": now,
            "updatedAt": now,
            "workspaceId": DEMO_WORKSPACE_ID,
        }
        with self._lock:
            self._leads[lead["id"]] = lead
            return _Response(201, {"success": True, "data": copy.deepcopy(lead)})

    def _delete_lead(self, lead_id: str) -> _Response:
        self._check_id(lead_id)
        with self._lock:
            if self._leads.pop(lead_id, None) is not None:
                return _Response(200, {"success": True, "data": {"id": lead_id, "deleted": True}})
        raise self._not_found(lead_id)
