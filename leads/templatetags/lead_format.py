"""Formatting of lead metadata values: `{% load lead_format %}`.

Metadata is free-form, untrusted JSON (pollybot-api.md). Every piece of HTML here
is built with format_html / format_html_join, so every upstream string is escaped,
and a value becomes a link only when it is an http(s) URL (DESIGN.md: "always
autoescaped, links only for http(s)").
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from leads.lead import humanize_key as _humanize_key

register = template.Library()

# Containers nested deeper than this are shown as compact JSON text: a hostile or
# machine-made value cannot grow the page into thousands of nested boxes, and six
# levels is more than any CRM field seen in the docs uses (they are flat).
MAX_NESTING_DEPTH = 6

# Schemes that may become links; javascript:, data:, vbscript: and the rest never do.
LINK_SCHEMES = frozenset({"http", "https"})
# Characters RFC 3986 never allows unencoded in a URI (besides whitespace and
# controls, checked separately). A "URL" carrying them is text that wants to break
# out of an attribute, not an address, so it is shown, not linked.
_URL_FORBIDDEN = frozenset('"<>\\^`{|}')

_EMPTY = '<span class="value-empty" aria-label="empty">—</span>'


def _http_url(value: object) -> str | None:
    """The URL (trimmed) when `value` is an absolute http(s) URL with a host, else None."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    if not url or any(ch.isspace() or not ch.isprintable() or ch in _URL_FORBIDDEN for ch in url):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 literal)
        return None
    if parts.scheme.lower() not in LINK_SCHEMES or not parts.netloc:
        return None
    return url


def _format_number(value: int | float) -> str:
    """Thousands separators without changing the value's precision: 1234567 ->
    "1,234,567", 1234.5 -> "1,234.5", 0.5 -> "0.5"."""
    if isinstance(value, int):
        try:
            return f"{value:,}"
        except ValueError:
            # Python refuses int->str beyond 4,300 digits (sys.int_info); such a value
            # cannot come from json.loads, but it must not break the page either.
            return "(number too large to show)"
    text = repr(value)  # the shortest text that round-trips: 0.1 stays "0.1"
    if not text.lstrip("-")[:1].isdigit() or "e" in text:
        return text  # nan, inf, 1e+16: separators would not help
    sign = "-" if text.startswith("-") else ""
    whole, _, fraction = text.lstrip("-").partition(".")
    return f"{sign}{int(whole):,}" + (f".{fraction}" if fraction else "")


def _compact_json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError, RecursionError):
        return "…"


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _render(value: Any, *, depth: int) -> SafeString:
    if value is None:
        return SafeString(_EMPTY)
    if isinstance(value, str):
        url = _http_url(value)
        if url is not None:
            return format_html(
                '<a href="{}" rel="noopener noreferrer nofollow" target="_blank">{}</a>',
                url,
                url,
            )
        return format_html('<span class="value-text">{}</span>', value)
    # bool before int: True is an int in Python and would show as "1".
    if isinstance(value, bool):
        return format_html('<span class="value-bool">{}</span>', "Yes" if value else "No")
    if isinstance(value, int | float):
        return format_html('<span class="value-number">{}</span>', _format_number(value))
    if isinstance(value, list | tuple | Mapping):
        if not value:
            return SafeString(_EMPTY)
        if depth >= MAX_NESTING_DEPTH:
            return format_html(
                '<span class="value-text value-json">{}</span>', _compact_json(value)
            )
        if isinstance(value, Mapping):
            rows = format_html_join(
                "",
                "<dt>{}</dt><dd>{}</dd>",
                (
                    (_humanize_key(str(key)), _render(item, depth=depth + 1))
                    for key, item in value.items()
                ),
            )
            return format_html('<dl class="value-object">{}</dl>', rows)
        if all(_is_scalar(item) for item in value):
            chips = format_html_join(
                "",
                '<li class="chip">{}</li>',
                ((_render(item, depth=depth + 1),) for item in value),
            )
            return format_html('<ul class="chips">{}</ul>', chips)
        items = format_html_join(
            "", "<li>{}</li>", ((_render(item, depth=depth + 1),) for item in value)
        )
        return format_html('<ul class="value-list">{}</ul>', items)
    try:
        text = str(value)
    except Exception:  # a hostile __str__ on a non-JSON object: show nothing, not a 500
        text = ""
    return format_html('<span class="value-text">{}</span>', text)


@register.simple_tag
def metadata_value(value: Any) -> SafeString:
    """HTML for one metadata value, by JSON type; everything upstream is escaped."""
    return _render(value, depth=0)


@register.filter
def safe_url(value: object) -> str:
    """The value when it is an http(s) URL with a host, else "" (for `href`s)."""
    return _http_url(value) or ""


@register.filter
def humanize_key(key: object) -> str:
    """A readable label for a metadata key (see leads.lead.humanize_key)."""
    return _humanize_key(key if isinstance(key, str) else str(key))
