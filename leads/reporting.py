"""Error pages and error reports that never show the workspace key."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter

from leads.log import KEY_SHAPE, redact


class RedactingExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's error-report filter, always on, and blind to workspace keys.

    Django's filter only acts with DEBUG off, and only on what a decorator
    names. The workspace key must not reach an error page even on a laptop
    with DEBUG on (the technical 500 page shows every frame's local variables),
    so this one is always active (settings named like secrets are hidden, and
    @sensitive_variables is honoured, with DEBUG on too) and redacts key-shaped
    text in frames' local variables (a string, or an object whose repr holds
    one: a headers dict, say) and in POST parameters (the workspace admin form).
    Nothing on the site puts the key in a URL or an exception message.
    """

    def is_active(self, request: HttpRequest | None) -> bool:
        return True

    def get_post_parameters(self, request: HttpRequest | None) -> Any:
        return self._redacted_multivaluedict(super().get_post_parameters(request))

    def get_cleansed_multivaluedict(self, request: HttpRequest, multivaluedict: Any) -> Any:
        cleansed = super().get_cleansed_multivaluedict(request, multivaluedict)
        return self._redacted_multivaluedict(cleansed)

    def get_traceback_frame_variables(self, request: HttpRequest | None, tb_frame: Any) -> Any:
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [(name, self._redacted(value)) for name, value in variables]

    @staticmethod
    def _redacted(value: Any) -> Any:
        try:
            text = value if isinstance(value, str) else repr(value)
        except Exception:  # a repr that fails: shown by Django as it would anyway
            return value
        return redact(text) if KEY_SHAPE.search(text) else value

    def _redacted_multivaluedict(self, values: Any) -> Any:
        if not hasattr(values, "lists"):
            return values
        if not any(KEY_SHAPE.search(str(v)) for _, vs in values.lists() for v in vs):
            return values
        values = values.copy()
        for name, items in values.lists():
            values.setlist(name, [redact(str(item)) for item in items])
        return values
