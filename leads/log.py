"""Logging filter: the request ID on every line, and keys redacted as a last defence."""

from __future__ import annotations

import contextvars
import logging
import re

# The current request's ID, set by leads.middleware.RequestIDMiddleware.
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# What the cache decided for the upstream call being made ("miss", "refresh",
# "expired"...), set by leads.services around each call so that the client's
# one line per call carries it without knowing about caches.
cache_outcome_var: contextvars.ContextVar[str] = contextvars.ContextVar("cache", default="-")

# Anything shaped like a workspace key (pollybot-api.md: sk-workspace_ + 51 chars),
# up to the next space: the client accepts any visible ASCII in a key.
KEY_SHAPE = re.compile(r"sk-workspace_[\x21-\x7e]*")
REDACTED = "sk-workspace_[redacted]"


def redact(text: str) -> str:
    return KEY_SHAPE.sub(REDACTED, text)


class RequestContextFilter(logging.Filter):
    """Adds `request_id` and the `cache` outcome, and redacts key-shaped text.

    The message is rendered here, redacted, and its arguments dropped, so no
    handler can format the key back in; tracebacks are rendered and redacted too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id == "-":  # Django's own after-response lines carry the request
            request_id = getattr(getattr(record, "request", None), "request_id", "-")
        record.request_id = request_id
        record.cache = cache_outcome_var.get()
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
