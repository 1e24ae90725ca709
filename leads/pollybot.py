"""The HTTP client of the PollyBot leads API and its typed errors.

Plain Python over requests/urllib3, configured only by its constructor: no
Django settings, cache or ORM here (DESIGN.md "Flow of one page view"). Every
failure leaves this module as one of the closed set of `PollyBotError`
subclasses (DESIGN.md "Errors are a closed set"); no requests/urllib3 exception
escapes. The API key never appears in a log record, an exception or a repr.
"""

from __future__ import annotations

import contextlib
import contextvars
import email.utils
import functools
import http.client
import json
import logging
import math
import os
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Self, TypedDict, Unpack, cast

import requests
import requests.adapters
import requests.auth
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
from urllib3.util import Retry, Timeout

# --- Budgets ----------------------------------------------------------------
# One call serves one page view that a person is waiting for (a deep link
# opened on a phone), and the whole workspace shares 1,000 calls an hour.

# Slightly above a multiple of 3 s, TCP's initial SYN retransmission interval,
# as the requests docs advise: a lost SYN gets one retransmit before we give up.
CONNECT_TIMEOUT = 3.05
# Longest wait for the next bytes once connected. Get Lead is a single-row
# lookup that a healthy API answers well under a second; 5 s tolerates a slow
# moment without leaving the page hanging.
READ_TIMEOUT = 5.0
# Whole call, all attempts and backoff sleeps included (and body reads, which
# requests' per-socket-read timeout does not bound): past ~8 s people reload.
CALL_DEADLINE = 8.0
# GET only: 3 attempts at most rides over a restart or a proxy blip; more would
# spend the shared hourly budget (a 5xx may still be counted) and the deadline.
MAX_RETRIES = 2
# urllib3 backoff: the first retry is immediate, the next waits
# BACKOFF_FACTOR * 2 s = 0.5 s, so all sleeps fit well inside CALL_DEADLINE.
BACKOFF_FACTOR = 0.25
# No single backoff sleep may eat a large part of CALL_DEADLINE.
BACKOFF_MAX = 2.0
# Up to 0.25 s of random extra wait, so that workers which failed together do
# not retry together (thundering herd). Only applied when BACKOFF_FACTOR > 0.
BACKOFF_JITTER = 0.25
# A complete lead is a few KiB and a page of 100 list items a few hundred KiB:
# anything larger is not the API answering and is not worth our memory.
MAX_RESPONSE_BYTES = 1024 * 1024
# Bytes asked for per body read: small enough that the deadline is checked
# often against a server that trickles its answer.
READ_CHUNK_BYTES = 16 * 1024
# Pooled keep-alive connections per host: one per worker thread is plenty.
POOL_MAXSIZE = 10
# The API's rate-limit window is one hour: no sensible wait is longer.
RETRY_AFTER_MAX = 3600
# The API's own maximum page size for List Leads (pollybot-api.md).
MAX_PAGE_SIZE = 100
# Upstream request IDs and codes are echoed into logs: keep them short.
MAX_REQUEST_ID_LENGTH = 128
MAX_CODE_LENGTH = 64

# --- Lead IDs ----------------------------------------------------------------
# The seed: "validate the ID format before calling"; IDs are lead_ + alphanumerics.
# ASCII only, matched with fullmatch (a `$` would accept a trailing newline).
LEAD_ID_PATTERN: re.Pattern[str] = re.compile(r"lead_[A-Za-z0-9]+", re.ASCII)
# Real IDs are ~20 characters; the bound keeps absurd input out of URLs and logs.
MAX_LEAD_ID_LENGTH = 100
EXPECTED_LEAD_ID_FORMAT = "lead_[alphanumeric string]"

API_PREFIX = "/api/v1/leads"
KEY_PREFIX = "sk-workspace_"

logger = logging.getLogger("leads.pollybot")

try:
    _VERSION = metadata.version("leadsite")
except metadata.PackageNotFoundError:  # running from a tree that was never installed
    _VERSION = "0"
USER_AGENT = f"leadsite/{_VERSION}"

# A key goes into an HTTP header: visible ASCII only. requests would otherwise
# reject it at send time with an error message that quotes the header value.
_KEY_CHARS = re.compile(r"[\x21-\x7e]+")
_DIGITS = re.compile(r"[0-9]{1,15}")
_SAFE_TOKEN = re.compile(r"[\x21-\x7e]+")


# --- Errors --------------------------------------------------------------------


class _ErrorFields(TypedDict, total=False):
    status: int | None
    code: str | None
    details: dict[str, Any] | None
    request_id: str | None
    lead_id: str | None


class PollyBotError(Exception):
    """Base of the closed set of failures of the PollyBot client.

    `message` is our own text, safe to show and to log. `details` is the
    upstream envelope's `details` (untrusted data: not part of str/repr).
    """

    default_message = "PollyBot call failed"

    def __init__(self, message: str | None = None, **fields: Unpack[_ErrorFields]) -> None:
        self.message: str = message or self.default_message
        self.status: int | None = fields.get("status")
        self.code: str | None = fields.get("code")
        self.details: dict[str, Any] = dict(fields.get("details") or {})
        self.request_id: str | None = fields.get("request_id")
        self.lead_id: str | None = fields.get("lead_id")
        super().__init__(self.message)

    def _fields(self) -> list[tuple[str, object]]:
        return [
            ("status", self.status),
            ("code", self.code),
            ("lead_id", self.lead_id),
            ("request_id", self.request_id),
        ]

    def __str__(self) -> str:
        # !r escapes newlines and control characters of untrusted values.
        shown = ", ".join(
            f"{name}={value!r}" for name, value in self._fields() if value is not None
        )
        return f"{self.message} ({shown})" if shown else self.message

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self._fields())
        return f"{type(self).__name__}(message={self.message!r}, {shown})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors do not survive Exception's default pickling
        # (a shared cache may hold errors): rebuild from the attributes.
        return (_restore_error, (type(self), dict(self.__dict__)))


def _restore_error(cls: type[PollyBotError], state: dict[str, Any]) -> PollyBotError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    error.args = (state.get("message", cls.default_message),)
    return error


class InvalidLeadId(PollyBotError):
    """The ID fails the documented format (checked locally, or upstream 400)."""

    default_message = "The lead ID is not in the expected format"

    def __init__(
        self,
        message: str | None = None,
        *,
        expected: str = EXPECTED_LEAD_ID_FORMAT,
        **fields: Unpack[_ErrorFields],
    ) -> None:
        super().__init__(message, **fields)
        self.expected: str = expected


class LeadNotFound(PollyBotError):
    """Upstream 404 with the envelope; `details` keeps its leadId and message."""

    default_message = "No lead with this ID in the workspace"


class NotConfigured(PollyBotError):
    """No usable base URL or API key."""

    default_message = "The PollyBot API is not configured"


class AuthenticationFailed(PollyBotError):
    """Upstream 401 or 403: the workspace key was refused."""

    default_message = "PollyBot refused the workspace API key"


class RateLimited(PollyBotError):
    """Upstream 429; `retry_after` in seconds when the answer said so."""

    default_message = "The workspace's PollyBot rate limit is spent"

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: int | None = None,
        **fields: Unpack[_ErrorFields],
    ) -> None:
        super().__init__(message, **fields)
        self.retry_after: int | None = retry_after

    def _fields(self) -> list[tuple[str, object]]:
        return [*super()._fields(), ("retry_after", self.retry_after)]


class UpstreamUnavailable(PollyBotError):
    """Connection error, timeout (`timeout=True`) or 5xx."""

    default_message = "PollyBot is not answering"

    def __init__(
        self,
        message: str | None = None,
        *,
        timeout: bool = False,
        **fields: Unpack[_ErrorFields],
    ) -> None:
        super().__init__(message, **fields)
        self.timeout: bool = timeout

    def _fields(self) -> list[tuple[str, object]]:
        return [*super()._fields(), ("timeout", self.timeout)]


class UpstreamProtocolError(PollyBotError):
    """An answer that is not the documented contract.

    Not JSON, not the envelope, `success: false` on a 2xx, wrong `data`, too
    large, a redirect, a 404 without the envelope (more likely a wrong base URL
    than a missing lead), or a 4xx we do not expect (other 400s, 405, 409, 422...):
    those mean our request or their contract changed, and retrying cannot help.
    """

    default_message = "PollyBot gave an unexpected answer"


# --- Lead ID validation ----------------------------------------------------------


def validate_lead_id(lead_id: object) -> str:
    """Return `lead_id` if it has the documented format, else raise InvalidLeadId. No I/O."""
    if isinstance(lead_id, str):
        if len(lead_id) <= MAX_LEAD_ID_LENGTH and LEAD_ID_PATTERN.fullmatch(lead_id):
            return lead_id
        # Keep a bounded copy for the error page; str/repr escape it.
        raise InvalidLeadId(lead_id=lead_id[:MAX_LEAD_ID_LENGTH])
    raise InvalidLeadId("The lead ID must be a string")


# --- Rate-limit headers ------------------------------------------------------------


def _non_negative_int(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return int(value) if _DIGITS.fullmatch(value) else None


@dataclass(frozen=True)
class RateLimitInfo:
    """The X-RateLimit-* headers of one answer (pollybot-api.md "Rate limits")."""

    limit: int | None
    remaining: int | None
    reset: int | None  # Unix time when the oldest counted request expires
    used: int | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimitInfo | None:
        """None when no X-RateLimit-* header is present; unreadable values become None."""
        lowered = {str(name).lower(): value for name, value in headers.items()}
        names = ("limit", "remaining", "reset", "used")
        if not any(f"x-ratelimit-{name}" in lowered for name in names):
            return None
        limit, remaining, reset, used = (
            _non_negative_int(lowered.get(f"x-ratelimit-{name}")) for name in names
        )
        return cls(limit=limit, remaining=remaining, reset=reset, used=used)


def _retry_after_seconds(headers: Mapping[str, str], *, now: float) -> int | None:
    """Seconds to wait from Retry-After (seconds or HTTP-date), else X-RateLimit-Reset.

    Clamped to [1, RETRY_AFTER_MAX]: this is advice for a page ("try again at
    HH:MM"); the client itself never sleeps on it.
    """
    seconds: float | None = None
    retry_after = (headers.get("Retry-After") or "").strip()
    if _DIGITS.fullmatch(retry_after):
        seconds = int(retry_after)
    elif retry_after:
        try:
            when = email.utils.parsedate_to_datetime(retry_after)
        except (TypeError, ValueError, IndexError, OverflowError):
            when = None
        if when is not None and when.tzinfo is not None:
            seconds = when.timestamp() - now
    if seconds is None:
        reset = _non_negative_int(headers.get("X-RateLimit-Reset"))
        if reset is not None:
            seconds = reset - now
    if seconds is None:
        return None
    return int(min(max(math.ceil(seconds), 1), RETRY_AFTER_MAX))


# --- Mapping answers to errors ----------------------------------------------------------


def _safe_token(value: object, *, limit: int) -> str | None:
    """An upstream code or request ID, kept only if short printable ASCII."""
    if isinstance(value, str) and len(value) <= limit and _SAFE_TOKEN.fullmatch(value):
        return value
    return None


_NOT_JSON = object()


def _decode_json(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return _NOT_JSON


def _make_status_error(
    *,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    lead_id: str | None,
    now: float,
) -> PollyBotError:
    """Map a non-2xx answer to its typed error (openai's `_make_status_error`)."""
    payload = _decode_json(body)
    # The error envelope: {"success": false, "error": ..., "code": ..., "details": {...}}.
    envelope = payload if isinstance(payload, dict) and payload.get("success") is False else None
    code = _safe_token(envelope.get("code"), limit=MAX_CODE_LENGTH) if envelope else None
    raw_details = envelope.get("details") if envelope else None
    fields: _ErrorFields = {
        "status": status,
        "code": code,
        "details": raw_details if isinstance(raw_details, dict) else {},
        "request_id": _safe_token(headers.get("X-Request-ID"), limit=MAX_REQUEST_ID_LENGTH),
        "lead_id": lead_id,
    }
    if status == 400 and code == "INVALID_ID_FORMAT":
        expected = fields["details"].get("expected") if fields["details"] else None
        return InvalidLeadId(
            "PollyBot says the lead ID is not in the expected format",
            expected=expected if isinstance(expected, str) else EXPECTED_LEAD_ID_FORMAT,
            **fields,
        )
    if status in (401, 403):
        return AuthenticationFailed(**fields)
    if status == 404:
        if envelope is not None and lead_id is not None:
            return LeadNotFound(**fields)
        # An HTML or foreign 404 comes from something in front of the API: a
        # wrong base URL or a proxy, not the answer "no such lead".
        return UpstreamProtocolError(
            "PollyBot answered 404 without its error envelope (is the base URL right?)",
            **fields,
        )
    if status == 429:
        return RateLimited(retry_after=_retry_after_seconds(headers, now=now), **fields)
    if status >= 500:
        return UpstreamUnavailable(f"PollyBot answered HTTP {status}", **fields)
    # Redirects and 4xx we do not expect: our bug or their change; never retried.
    return UpstreamProtocolError(f"PollyBot answered an unexpected HTTP {status}", **fields)


def _unwrap_success(
    body: bytes, *, status: int, headers: Mapping[str, str], lead_id: str | None
) -> dict[str, Any]:
    """The `data` dict of a 2xx success envelope, or UpstreamProtocolError."""
    payload = _decode_json(body)
    fields: _ErrorFields = {
        "status": status,
        "request_id": _safe_token(headers.get("X-Request-ID"), limit=MAX_REQUEST_ID_LENGTH),
        "lead_id": lead_id,
    }
    if payload is _NOT_JSON:
        raise UpstreamProtocolError("PollyBot's answer is not JSON", **fields)
    if not isinstance(payload, dict):
        raise UpstreamProtocolError("PollyBot's answer is not its envelope", **fields)
    if payload.get("success") is not True:
        fields["code"] = _safe_token(payload.get("code"), limit=MAX_CODE_LENGTH)
        raise UpstreamProtocolError("PollyBot's answer does not say success", **fields)
    data = payload.get("data")
    if not isinstance(data, dict):
        raise UpstreamProtocolError("PollyBot's answer has no data object", **fields)
    return data


# --- Transport: retries and timeouts bounded by the call's deadline --------------------


@dataclass
class _Call:
    """State of one client call, seen by the retry policy through a ContextVar.

    It also holds the deadline's watchdog: urllib3's timeouts bound each socket
    read, not the wait for the status line and headers, so a server that
    trickles its headers one byte at a time would outlast any deadline. When the
    deadline passes, the watchdog shuts the call's socket down, which ends the
    blocked read at once.
    """

    deadline: float  # time.monotonic() value
    retries: int = 0
    clock: Callable[[], float] = field(default=time.monotonic)
    _sock: socket.socket | None = None
    _done: bool = False
    _timer: threading.Timer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def remaining(self) -> float:
        return self.deadline - self.clock()

    def start_watchdog(self) -> None:
        self._timer = threading.Timer(max(self.remaining(), 0.0), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket | None) -> None:
        """The socket the current attempt is about to wait on."""
        with self._lock:
            self._sock = sock

    def finish(self) -> None:
        """Stop watching before the connection goes back to the pool."""
        with self._lock:
            self._done = True
            self._sock = None
        if self._timer is not None:
            self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            if self._done or self._sock is None:
                return
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)


_CURRENT_CALL: contextvars.ContextVar[_Call | None] = contextvars.ContextVar(
    "pollybot_call", default=None
)

_RETRY_STATUSES = frozenset({502, 503, 504})
_RETRY_METHODS = frozenset({"GET"})
# A socket timeout must be > 0 (0 means non-blocking); this is "already late".
_MIN_TIMEOUT = 0.001


class _DeadlineRetry(Retry):
    """urllib3's Retry, plus: GET only even for connect errors, and never past the deadline."""

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: urllib3.BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: urllib3.connectionpool.ConnectionPool | None = None,
        _stacktrace: Any = None,
    ) -> Self:
        reason = error or urllib3.exceptions.ResponseError(
            "no retry" if response is None else f"HTTP {response.status}"
        )
        # urllib3 retries connect errors for every method; we never repeat a PUT.
        if method is None or method.upper() not in _RETRY_METHODS:
            raise urllib3.exceptions.MaxRetryError(_pool, url, reason)  # type: ignore[arg-type]
        if isinstance(error, urllib3.exceptions.ReadTimeoutError):
            raise urllib3.exceptions.MaxRetryError(_pool, url, reason)  # type: ignore[arg-type]
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        call = _CURRENT_CALL.get()
        if call is not None:
            if call.remaining() <= new.get_backoff_time():
                # No time left to wait and try again: give the caller this outcome.
                raise urllib3.exceptions.MaxRetryError(_pool, url, reason)  # type: ignore[arg-type]
            call.retries += 1
        return new


class _DeadlineTimeout(Timeout):
    """A Timeout urllib3 clones per attempt: each clone is cut to what is left of the deadline."""

    def __init__(self, *, connect: float, read: float, call: _Call) -> None:
        super().__init__(connect=connect, read=read)
        self._call = call

    def clone(self) -> Timeout:
        left = max(self._call.remaining(), _MIN_TIMEOUT)
        connect = cast(float, self._connect)
        read = cast(float, self._read)
        return Timeout(connect=min(connect, left), read=min(read, left), total=left)


class _WatchedHTTPConnection(urllib3.connection.HTTPConnection):
    """Hands its socket to the call's watchdog before waiting for the answer."""

    def getresponse(self) -> urllib3.connection.HTTPResponse:  # type: ignore[override]
        call = _CURRENT_CALL.get()
        if call is not None:
            call.watch(self.sock)
        return super().getresponse()


class _WatchedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def getresponse(self) -> urllib3.connection.HTTPResponse:  # type: ignore[override]
        call = _CURRENT_CALL.get()
        if call is not None:
            call.watch(self.sock)
        return super().getresponse()


class _WatchedHTTPConnectionPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _DeadlineAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter whose pools use the watched connections above."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPConnectionPool,
            "https": _WatchedHTTPSConnectionPool,
        }


class _BearerAuth(requests.auth.AuthBase):
    """Bearer auth whose repr never shows the key (pollybot-api.md "Authentication")."""

    def __init__(self, api_key: str) -> None:
        self._header_value = f"Bearer {api_key}"
        self._masked = mask_api_key(api_key)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._header_value
        return request

    def __repr__(self) -> str:
        return f"_BearerAuth({self._masked!r})"


def mask_api_key(api_key: str) -> str:
    """`sk-workspace_…` and the last 4 characters at most, for reprs and admin display."""
    prefix = KEY_PREFIX if api_key.startswith(KEY_PREFIX) else ""
    secret = api_key[len(prefix) :]
    # Show 4 characters only of a long secret: a short one would be mostly revealed.
    tail = secret[-4:] if len(secret) >= 16 else ""
    return f"{prefix}…{tail}"


class _BodyTooLarge(Exception):
    pass


class _DeadlinePassed(Exception):
    pass


def _is_timeout(exc: BaseException) -> bool:
    """True for connect/read timeouts, however requests and urllib3 wrapped them."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        # NewConnectionError subclasses ConnectTimeoutError in urllib3 2.x: "refused" is no timeout.
        if isinstance(current, urllib3.exceptions.NewConnectionError):
            return False
        if isinstance(current, requests.Timeout | urllib3.exceptions.TimeoutError | TimeoutError):
            return True
        if isinstance(current, urllib3.exceptions.MaxRetryError):
            current = current.reason
        elif current.args and isinstance(current.args[0], BaseException):
            current = current.args[0]
        else:
            current = current.__cause__ or current.__context__
    return False


_CONFIG_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
    requests.exceptions.URLRequired,
)
_TRANSPORT_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)


def _error_from_exception(exc: BaseException, *, call: _Call, lead_id: str | None) -> PollyBotError:
    """Wrap a transport exception. The message names its class only: requests'
    messages carry URLs and, for some header errors, header values."""
    kind = type(exc).__name__
    if isinstance(exc, _CONFIG_ERRORS):
        return NotConfigured(
            f"The PollyBot base URL or key is not usable ({kind})", lead_id=lead_id
        )
    if isinstance(exc, requests.exceptions.ContentDecodingError | urllib3.exceptions.DecodeError):
        return UpstreamProtocolError(
            f"PollyBot's answer could not be decoded ({kind})", lead_id=lead_id
        )
    if isinstance(exc, requests.TooManyRedirects):
        return UpstreamProtocolError(f"PollyBot redirected ({kind})", lead_id=lead_id)
    if _is_timeout(exc) or call.remaining() <= 0:
        return UpstreamUnavailable(
            f"PollyBot did not answer in time ({kind})", timeout=True, lead_id=lead_id
        )
    return UpstreamUnavailable(f"Could not reach PollyBot ({kind})", lead_id=lead_id)


def _content_length(headers: Mapping[str, str]) -> int | None:
    return _non_negative_int(headers.get("Content-Length"))


# What is wrong with a success's `data` for this operation (None: nothing).
_DataCheck = Callable[[dict[str, Any]], str | None]


def _not_this_lead(data: dict[str, Any], *, lead_id: str) -> str | None:
    # Showing another lead's data on this lead's page would be worse than an error,
    # and a lead without its ID cannot be linked to (or acted on) at all.
    if data.get("id") != lead_id:
        return "PollyBot answered with another lead than the one asked for, or none"
    return None


def _not_a_list(data: dict[str, Any]) -> str | None:
    leads = data.get("leads")
    if (
        not isinstance(leads, list)
        or not all(isinstance(item, dict) for item in leads)
        or not isinstance(data.get("pagination"), dict)
    ):
        return "PollyBot's lead list does not have the documented shape"
    return None


# --- The client ------------------------------------------------------------------------


class Client:
    """One pooled session to the PollyBot leads API. Thread-safe for concurrent calls."""

    last_rate_limit: RateLimitInfo | None

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        deadline: float = CALL_DEADLINE,
        max_retries: int = MAX_RETRIES,
        backoff_factor: float = BACKOFF_FACTOR,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        session: requests.Session | None = None,
    ) -> None:
        base_url = (base_url or "").strip()
        api_key = (api_key or "").strip()  # pasted keys often carry a newline
        if not base_url or not api_key:
            raise NotConfigured("The PollyBot base URL and API key must both be set")
        parts = urllib.parse.urlsplit(base_url)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.query
            or parts.fragment
        ):
            raise NotConfigured("The PollyBot base URL must be an http(s) URL with a host")
        if not _KEY_CHARS.fullmatch(api_key):
            raise NotConfigured("The PollyBot API key contains characters a key cannot have")
        if min(connect_timeout, read_timeout, deadline) <= 0 or max_retries < 0:
            raise ValueError("timeouts and the deadline must be > 0, max_retries >= 0")

        # Kept without credentials: it appears in the repr.
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        self._base_url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        self._url_root = base_url.rstrip("/")
        self._auth = _BearerAuth(api_key)
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._deadline = deadline
        self._max_response_bytes = max_response_bytes
        self.last_rate_limit = None

        retry = _DeadlineRetry(
            total=max_retries,
            connect=max_retries,
            # A connection dropped before the answer (a keep-alive socket the
            # server closed, a proxy restart) is retried; a read *timeout* is
            # not (see _DeadlineRetry): a server too slow once would eat the
            # deadline again.
            read=max_retries,
            redirect=0,
            status=max_retries,
            other=0,
            allowed_methods=_RETRY_METHODS,
            status_forcelist=_RETRY_STATUSES,  # never a 4xx
            backoff_factor=backoff_factor,
            backoff_max=BACKOFF_MAX,
            # backoff_factor=0 means "no sleeps at all" (tests), jitter included.
            backoff_jitter=BACKOFF_JITTER if backoff_factor > 0 else 0.0,
            respect_retry_after_header=False,  # never sleep for a long Retry-After
            raise_on_status=False,  # the last 5xx comes back and is mapped like any answer
        )
        adapter = _DeadlineAdapter(pool_connections=1, pool_maxsize=POOL_MAXSIZE, max_retries=retry)
        self._owns_session = session is None
        self._session = session if session is not None else self._new_session(self._url_root)
        # Mounted on a given session too: the retry policy must hold whoever built it.
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    @staticmethod
    def _new_session(url: str) -> requests.Session:
        """A Session that takes the environment's proxy and CA settings once, here.

        With `trust_env` on, requests scans the whole environment on every call
        (proxies, NO_PROXY, REQUESTS_CA_BUNDLE): about a millisecond of CPU a
        call. The same settings are read once instead: the proxy for this
        base URL unless NO_PROXY exempts it, and REQUESTS_CA_BUNDLE or
        CURL_CA_BUNDLE as the certificates to trust.
        """
        session = requests.Session()
        session.proxies.update(requests.utils.get_environ_proxies(url))
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            session.verify = bundle
        session.trust_env = False
        return session

    def __repr__(self) -> str:
        return f"Client(base_url={self._base_url!r}, api_key={self._auth._masked!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections (the session too, if the client created it)."""
        if self._owns_session:
            self._session.close()

    # --- operations ---

    def get_lead(self, lead_id: str) -> dict[str, Any]:
        """Get Lead (the seed): the complete lead. The ID is validated first (no call if bad)."""
        lead_id = validate_lead_id(lead_id)
        return self._call(
            "GET",
            f"{API_PREFIX}/{urllib.parse.quote(lead_id, safe='')}",
            lead_id=lead_id,
            problem=functools.partial(_not_this_lead, lead_id=lead_id),
        )

    def list_leads(
        self,
        *,
        page: int = 1,
        limit: int = 20,
        status: str | None = None,
        source: str | None = None,
        search: str | None = None,
    ) -> dict[str, Any]:
        """List Leads: {"leads": [...], "pagination": {...}} with its shape checked."""
        if isinstance(page, bool) or not isinstance(page, int) or page < 1:
            raise ValueError("page must be an int >= 1")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be an int from 1 to {MAX_PAGE_SIZE}")
        params: dict[str, str] = {"page": str(page), "limit": str(limit)}
        for name, value in (("status", status), ("source", source), ("search", search)):
            if value is not None:
                params[name] = value
        return self._call("GET", API_PREFIX, params=params, lead_id=None, problem=_not_a_list)

    def update_lead(self, lead_id: str, *, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Update Lead: PUT only the changed fields; never retried. Returns the updated lead.

        `changes` must be JSON-serialisable (a TypeError/ValueError otherwise,
        before any call: that is a caller bug, not an upstream failure).
        """
        lead_id = validate_lead_id(lead_id)
        body = json.dumps(dict(changes), allow_nan=False).encode()
        return self._call(
            "PUT",
            f"{API_PREFIX}/{urllib.parse.quote(lead_id, safe='')}",
            body=body,
            lead_id=lead_id,
            problem=functools.partial(_not_this_lead, lead_id=lead_id),
        )

    # --- internals ---

    def _call(
        self,
        method: str,
        path: str,
        *,
        lead_id: str | None,
        problem: _DataCheck,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> dict[str, Any]:
        started = time.monotonic()
        call = _Call(deadline=started + self._deadline)
        token = _CURRENT_CALL.set(call)
        status: int | None = None
        call.start_watchdog()
        try:
            try:
                response = self._session.request(
                    method,
                    self._url_root + path,
                    params=params,
                    data=body,
                    headers=self._headers(has_body=body is not None),
                    auth=self._auth,
                    # A urllib3 Timeout goes through requests unchanged; urllib3
                    # clones it per attempt, each clone cut to the deadline.
                    timeout=cast(
                        Any,
                        _DeadlineTimeout(
                            connect=self._connect_timeout, read=self._read_timeout, call=call
                        ),
                    ),
                    stream=True,  # we read the body ourselves: size cap and deadline
                    allow_redirects=False,  # the API does not redirect; the key stays put
                )
            except _TRANSPORT_ERRORS as exc:
                raise _error_from_exception(exc, call=call, lead_id=lead_id) from exc
            status = response.status_code
            data = self._finish(response, call=call, lead_id=lead_id, problem=problem)
        except PollyBotError as error:
            self._log(method, path, started, call, status=status, error=error)
            raise
        finally:
            call.finish()
            _CURRENT_CALL.reset(token)
        self._log(method, path, started, call, status=status, error=None)
        return data

    def _headers(self, *, has_body: bool) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if has_body:
            headers["Content-Type"] = "application/json"
        return headers

    def _finish(
        self,
        response: requests.Response,
        *,
        call: _Call,
        lead_id: str | None,
        problem: _DataCheck,
    ) -> dict[str, Any]:
        headers = response.headers
        status = response.status_code
        info = RateLimitInfo.from_headers(headers)
        if info is not None:
            # The latest answer that carried the headers (an HTML page from a
            # proxy carries none and must not erase what we know).
            self.last_rate_limit = info
        request_id = _safe_token(headers.get("X-Request-ID"), limit=MAX_REQUEST_ID_LENGTH)
        fields: _ErrorFields = {"status": status, "request_id": request_id, "lead_id": lead_id}
        try:
            body: bytes | None = self._read_body(response, call=call)
        except _BodyTooLarge:
            body = None
        except _DeadlinePassed as exc:
            raise UpstreamUnavailable(
                "PollyBot did not answer in time", timeout=True, **fields
            ) from exc
        except _TRANSPORT_ERRORS as exc:
            if _is_timeout(exc) or call.remaining() <= 0:
                raise UpstreamUnavailable(
                    "PollyBot did not answer in time", timeout=True, **fields
                ) from exc
            # The answer began and then broke off (truncated, reset mid-body):
            # whatever came is not a complete answer we could use.
            raise UpstreamProtocolError(
                f"PollyBot's answer was cut short ({type(exc).__name__})", **fields
            ) from exc
        finally:
            call.finish()  # before the connection goes back to the pool
            response.close()
        if 200 <= status < 300:
            if body is None:
                raise UpstreamProtocolError("PollyBot's answer is too large", **fields)
            data = _unwrap_success(body, status=status, headers=headers, lead_id=lead_id)
            message = problem(data)
            if message is not None:
                raise UpstreamProtocolError(message, **fields)
            return data
        # An oversized error page is still mapped by its status.
        raise _make_status_error(
            status=status, headers=headers, body=body or b"", lead_id=lead_id, now=time.time()
        )

    def _read_body(self, response: requests.Response, *, call: _Call) -> bytes:
        """The decoded body, at most max_response_bytes, read before the deadline.

        read1() returns what one socket read brings (read(amt) would wait to fill
        amt while a server trickles bytes), and the socket timeout is re-armed to
        what is left of the deadline before each read.
        """
        declared = _content_length(response.headers)
        if declared is not None and declared > self._max_response_bytes:
            raise _BodyTooLarge
        raw = response.raw
        buffer = bytearray()
        while True:
            left = call.remaining()
            if left <= 0:
                raise _DeadlinePassed
            _set_socket_timeout(raw, max(min(self._read_timeout, left), _MIN_TIMEOUT))
            chunk = raw.read1(READ_CHUNK_BYTES, decode_content=True)
            if not chunk:
                return bytes(buffer)
            buffer += chunk
            if len(buffer) > self._max_response_bytes:
                raise _BodyTooLarge

    def _log(
        self,
        method: str,
        path: str,
        started: float,
        call: _Call,
        *,
        status: int | None,
        error: PollyBotError | None,
    ) -> None:
        elapsed_ms = round((time.monotonic() - started) * 1000)
        attempts = call.retries + 1
        outcome = type(error).__name__ if error else "ok"
        if isinstance(error, UpstreamUnavailable) and error.timeout:
            outcome = "timeout"
        # Method, path (with the lead ID; no query: search terms are personal
        # data), status, outcome, time, attempts. Never the key nor the body.
        logger.log(
            logging.WARNING if error else logging.INFO,
            "PollyBot %s %s -> %s %s in %d ms (%d attempt%s)",
            method,
            path,
            status if status is not None else "-",
            outcome,
            elapsed_ms,
            attempts,
            "" if attempts == 1 else "s",
            extra={
                "method": method,
                "path": path,
                "status": status,
                "outcome": outcome,
                "elapsed_ms": elapsed_ms,
                "attempts": attempts,
            },
        )


def _set_socket_timeout(raw: Any, seconds: float) -> None:
    """Re-arm the response's socket timeout (absent with a mocked or closed connection)."""
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    settimeout = getattr(sock, "settimeout", None)
    if callable(settimeout):
        settimeout(seconds)
