"""Request-wide concerns: a request ID for the logs, and the session's absolute lifetime."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from django.contrib.auth.views import redirect_to_login
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

from leads.log import request_id_var

# An incoming X-Request-ID (from the proxy in front) is kept only when it is
# short and plain, so it can neither forge log lines nor flood them.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
LOGIN_STARTED = "leadsite_login_started"
LAST_SEEN = "leadsite_last_seen"
# The idle timeout is renewed at most this often: a session write per page
# view would cost a database write per view for a minute's precision.
IDLE_RENEW_INTERVAL = 60


class RequestIDMiddleware:
    """Take a sane X-Request-ID or make one; log with it; send it back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        # Also on the request: Django logs a 4xx ("Not Found: …") after the
        # middleware has returned, with the request attached to the record.
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


@receiver(user_logged_in)
def _remember_login_time(sender: Any, request: HttpRequest | None, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        now = time.time()
        request.session[LOGIN_STARTED] = now
        request.session[LAST_SEEN] = now


class SessionLifetimeMiddleware:
    """The session's two limits: idle timeout and absolute lifetime.

    Idle: Django expires a session SESSION_COOKIE_AGE seconds after it was last
    saved; this renews it (by saving) at most once a minute while the user is
    active. Absolute: the session ends SESSION_MAX_AGE seconds after login,
    however active it was.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            started = request.session.get(LOGIN_STARTED)
            if not isinstance(started, int | float) or (
                time.time() - started > settings.SESSION_MAX_AGE
            ):
                logout(request)  # flushes the session on the server
                return redirect_to_login(request.get_full_path())
            last_seen = request.session.get(LAST_SEEN)
            now = time.time()
            if not isinstance(last_seen, int | float) or now - last_seen > IDLE_RENEW_INTERVAL:
                request.session[LAST_SEEN] = now  # modified: saved with a new expiry
        return self.get_response(request)
