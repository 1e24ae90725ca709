"""Tests for leads/templatetags/lead_format.py: metadata values as escaped HTML."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.template import Context, Template
from django.utils.safestring import SafeString

from leads.templatetags.lead_format import (
    MAX_NESTING_DEPTH,
    humanize_key,
    metadata_value,
    safe_url,
)

EMPTY = '<span class="value-empty" aria-label="empty">—</span>'


def render_tag(value: Any) -> str:
    """Render through Django's template engine, as the lead page does."""
    template = Template("{% load lead_format %}{% metadata_value v %}")
    return template.render(Context({"v": value}))


# --- one row per JSON type ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "html"),
    [
        ("Tech Corp", '<span class="value-text">Tech Corp</span>'),
        ("", '<span class="value-text"></span>'),
        ("line 1\nline 2", '<span class="value-text">line 1\nline 2</span>'),
        (None, EMPTY),
        # bool before int: True must not show as "1".
        (True, '<span class="value-bool">Yes</span>'),
        (False, '<span class="value-bool">No</span>'),
        (0, '<span class="value-number">0</span>'),
        (1, '<span class="value-number">1</span>'),
        (85, '<span class="value-number">85</span>'),
        (1234567, '<span class="value-number">1,234,567</span>'),
        (-1234567, '<span class="value-number">-1,234,567</span>'),
        (0.5, '<span class="value-number">0.5</span>'),
        (-0.5, '<span class="value-number">-0.5</span>'),
        (0.1, '<span class="value-number">0.1</span>'),
        (1234.5, '<span class="value-number">1,234.5</span>'),
        (1234567.25, '<span class="value-number">1,234,567.25</span>'),
        (1000.0, '<span class="value-number">1,000.0</span>'),
        (1e20, '<span class="value-number">1e+20</span>'),
        (float("nan"), '<span class="value-number">nan</span>'),
        (float("-inf"), '<span class="value-number">-inf</span>'),
        ([], EMPTY),
        ({}, EMPTY),
        (
            ["product_a", "product_b"],
            '<ul class="chips"><li class="chip"><span class="value-text">product_a</span></li>'
            '<li class="chip"><span class="value-text">product_b</span></li></ul>',
        ),
        (
            [1, True, None],
            '<ul class="chips"><li class="chip"><span class="value-number">1</span></li>'
            '<li class="chip"><span class="value-bool">Yes</span></li>'
            f'<li class="chip">{EMPTY}</li></ul>',
        ),
        (
            {"min": 1000, "max": 5000},
            '<dl class="value-object"><dt>Min</dt><dd><span class="value-number">1,000</span></dd>'
            '<dt>Max</dt><dd><span class="value-number">5,000</span></dd></dl>',
        ),
    ],
)
def test_metadata_value_by_type(value: Any, html: str) -> None:
    rendered = metadata_value(value)
    assert isinstance(rendered, SafeString)
    assert rendered == html
    assert render_tag(value) == html


def test_mixed_list_is_a_value_list_with_nested_values() -> None:
    html = render_tag(["a", {"utm_source": "google"}, [1, 2]])
    assert html == (
        '<ul class="value-list">'
        '<li><span class="value-text">a</span></li>'
        '<li><dl class="value-object"><dt>UTM source</dt>'
        '<dd><span class="value-text">google</span></dd></dl></li>'
        '<li><ul class="chips"><li class="chip"><span class="value-number">1</span></li>'
        '<li class="chip"><span class="value-number">2</span></li></ul></li>'
        "</ul>"
    )


def test_nested_object_keys_are_humanized_and_escaped() -> None:
    html = render_tag({"job_title": "CTO", "<script>": {"lead_score": 9}, "": None})
    assert "<dt>Job title</dt>" in html
    assert "<dt>&lt;script&gt;</dt>" in html
    assert "<dt>Lead score</dt>" in html
    assert f"<dt>(empty key)</dt><dd>{EMPTY}</dd>" in html
    assert "<script>" not in html


def nested(levels: int) -> Any:
    """`levels` objects inside each other around a leaf string."""
    value: Any = "leaf"
    for _ in range(levels):
        value = {"k": value}
    return value


def test_nesting_up_to_the_cap_is_html() -> None:
    html = render_tag(nested(MAX_NESTING_DEPTH))
    assert html.count('<dl class="value-object">') == MAX_NESTING_DEPTH
    assert '<span class="value-text">leaf</span>' in html
    assert "value-json" not in html


def test_nesting_beyond_the_cap_becomes_escaped_json_text() -> None:
    html = render_tag(nested(MAX_NESTING_DEPTH + 2))
    assert html.count('<dl class="value-object">') == MAX_NESTING_DEPTH
    assert (
        '<span class="value-text value-json">{&quot;k&quot;:{&quot;k&quot;:&quot;leaf&quot;}}'
        "</span>"
    ) in html


def test_deeply_hostile_nesting_is_capped_and_escaped() -> None:
    value: Any = ["<script>alert(1)</script>"]
    for _ in range(500):
        value = [value, 1]
    html = render_tag(value)
    assert html.count('<ul class="value-list">') == MAX_NESTING_DEPTH
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


# --- URLs ------------------------------------------------------------------------

LINK = '<a href="{0}" rel="noopener noreferrer nofollow" target="_blank">{0}</a>'


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("https://example.com", "https://example.com"),
        ("http://example.com/path?q=1", "http://example.com/path?q=1"),
        ("HTTPS://Example.com/", "HTTPS://Example.com/"),
        ("  https://example.com/x  ", "https://example.com/x"),
        ("https://www.linkedin.com/in/john-doe", "https://www.linkedin.com/in/john-doe"),
    ],
)
def test_http_urls_are_linked(value: str, url: str) -> None:
    assert render_tag(value) == LINK.format(url)
    assert safe_url(value) == url


def test_url_query_ampersand_is_escaped_in_href_and_text() -> None:
    html = render_tag("https://example.com/?a=1&b=2")
    assert html == LINK.format("https://example.com/?a=1&amp;b=2")


@pytest.mark.parametrize(
    "value",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "//evil.example",
        "/relative/path",
        "example.com",
        "ftp://example.com/file",
        "mailto:a@example.com",
        "https://",
        "https:///no-host",
        "http://[::1",
        'https://x.example/"><script>alert(1)</script>',
        "https://x.example/<b>",
        "https://exa mple.com",
        "https://example.com/\nSet-Cookie: x",
        "https://example.com/\x00",
        "java\tscript:alert(1)",
    ],
)
def test_dangerous_or_non_http_urls_are_escaped_text_not_links(value: str) -> None:
    html = render_tag(value)
    assert "<a " not in html
    assert "href" not in html
    assert "<script>" not in html
    assert html.startswith('<span class="value-text">')
    assert safe_url(value) == ""


def test_attribute_breakout_is_escaped() -> None:
    html = render_tag('https://x.example/"><script>alert(1)</script>')
    assert html == (
        '<span class="value-text">https://x.example/&quot;&gt;&lt;script&gt;alert(1)'
        "&lt;/script&gt;</span>"
    )


@pytest.mark.parametrize("value", [None, 42, ["https://example.com"], {"u": "https://x.y"}])
def test_safe_url_of_non_strings_is_empty(value: Any) -> None:
    assert safe_url(value) == ""


def test_safe_url_filter_in_a_template() -> None:
    template = Template('{% load lead_format %}<a href="{{ v|safe_url }}">')
    assert template.render(Context({"v": "https://example.com/?a=1&b=2"})) == (
        '<a href="https://example.com/?a=1&amp;b=2">'
    )
    assert template.render(Context({"v": "javascript:alert(1)"})) == '<a href="">'


# --- hostile strings ----------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "<script>alert(1)</script>",
        ["<script>alert(1)</script>", "ok"],
        {"note": "<script>alert(1)</script>"},
        {"<script>alert(1)</script>": 1},
        [{"a": ["<script>alert(1)</script>"]}],
    ],
)
def test_hostile_strings_are_escaped(value: Any) -> None:
    html = render_tag(value)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_img_onerror_is_escaped() -> None:
    html = render_tag('"><img src=x onerror=alert(1)>')
    assert html == '<span class="value-text">&quot;&gt;&lt;img src=x onerror=alert(1)&gt;</span>'


def test_other_python_types_are_str_and_escaped() -> None:
    class Odd:
        def __str__(self) -> str:
            return "<b>odd</b>"

    assert render_tag(Odd()) == '<span class="value-text">&lt;b&gt;odd&lt;/b&gt;</span>'


def test_huge_int_does_not_break_the_page() -> None:
    # Beyond Python's int->str digit limit; json.loads could not produce it, but a
    # caller could, and the page must still render.
    huge = 10**5000
    assert "too large" in render_tag(huge)


def test_compact_json_fallback_of_circular_value() -> None:
    value: list[Any] = []
    value.append(value)
    loop: Any = value
    for _ in range(MAX_NESTING_DEPTH):
        loop = [loop, 1]
    html = render_tag(loop)
    assert '<span class="value-text value-json">…</span>' in html


def test_capped_json_is_valid_compact_json_before_escaping() -> None:
    deep = nested(MAX_NESTING_DEPTH + 1)
    inner = deep
    for _ in range(MAX_NESTING_DEPTH):
        inner = inner["k"]
    html = metadata_value(deep)
    assert json.dumps(inner, separators=(",", ":")).replace('"', "&quot;") in html


# --- humanize_key filter --------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("utm_source", "UTM source"),
        ("firstContact", "First contact"),
        ("", "(empty key)"),
        (7, "7"),
    ],
)
def test_humanize_key_filter(key: Any, label: str) -> None:
    assert humanize_key(key) == label
    template = Template("{% load lead_format %}{{ k|humanize_key }}")
    assert template.render(Context({"k": key})) == label


def test_humanize_key_filter_output_is_autoescaped() -> None:
    template = Template("{% load lead_format %}{{ k|humanize_key }}")
    assert template.render(Context({"k": "<script>"})) == "&lt;script&gt;"
