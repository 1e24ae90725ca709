"""Keyboard-only use: every control reachable with Tab and visibly focused, Enter
activates, and the lead page's shortcuts."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import SEED_ID, SEED_PATH, api_calls, log_in

# Every element the keyboard should reach: visible, enabled, not taken out of the order.
FOCUSABLE = """
() => [...document.querySelectorAll(
  'a[href], button, input:not([type=hidden]), select, textarea, [tabindex]'
)].filter(el => !el.disabled && el.tabIndex >= 0 && el.checkVisibility())
 .map(el => el.outerHTML.slice(0, 120))
"""

FOCUSED = """
() => {
  const el = document.activeElement;
  if (!el || el === document.body) { return null; }
  const style = getComputedStyle(el);
  return {
    html: el.outerHTML.slice(0, 120),
    focusVisible: el.matches(':focus-visible'),
    outline: style.outlineStyle,
    outlineWidth: parseFloat(style.outlineWidth),
    onScreen: (r => r.right > 0 && r.bottom > 0 && r.left < innerWidth)(el.getBoundingClientRect()),
  };
}
"""

# More presses than any page here has controls: the walk stops when focus comes round.
MAX_TABS = 80


def tab_through(page: Page) -> list[dict]:
    """Press Tab from the top of the page until focus has gone round once."""
    page.locator("body").focus()
    seen: list[dict] = []
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused is None:  # past the last control: the browser's own UI
            break
        if seen and focused["html"] == seen[0]["html"]:
            break
        seen.append(focused)
    return seen


@pytest.mark.parametrize("path", [SEED_PATH, "/leads/"])
def test_tab_reaches_every_control_with_a_visible_focus_ring(path, open_page):
    page = open_page(path)
    expected = page.evaluate(FOCUSABLE)
    seen = tab_through(page)
    assert [item["html"] for item in seen] == expected
    for item in seen:
        assert item["focusVisible"], item["html"]
        assert item["outline"] != "none" and item["outlineWidth"] >= 2, item
        assert item["onScreen"], item  # the skip link, too, comes into view when focused


def test_enter_follows_a_link_and_presses_a_button(open_page, live_server):
    page = open_page("/leads/")
    first_lead = page.locator(".lead-table tbody a").first
    name = first_lead.inner_text()
    first_lead.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/leads/lead_\w+/\?from=list"))
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    page.get_by_role("button", name="Log out").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/accounts/login/")  # logged out: back to the form
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")


def test_slash_focuses_the_lookup_box(open_page):
    page = open_page()
    page.keyboard.press("/")
    expect(page.locator(".site-header input[name=q]")).to_be_focused()
    # Typing in it is not taken for shortcuts.
    page.keyboard.type("c?")
    expect(page.locator(".site-header input[name=q]")).to_have_value("c?")
    expect(page.locator("#shortcuts")).not_to_be_visible()


def test_c_copies_the_lead_id(open_page):
    page = open_page(permissions=["clipboard-read", "clipboard-write"])
    page.keyboard.press("c")
    expect(page.locator("#live-status")).to_have_text("Copied the lead ID.")
    assert page.evaluate("navigator.clipboard.readText()") == SEED_ID


def test_r_refreshes_from_pollybot(open_page, sandbox):
    page = open_page()
    calls = api_calls(sandbox)
    with page.expect_navigation():
        page.keyboard.press("r")
    assert api_calls(sandbox) == calls + 1
    expect(page.get_by_role("heading", level=1)).to_have_text("John Doe")


def test_question_mark_opens_and_closes_the_shortcuts(open_page):
    page = open_page()
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).not_to_be_visible()
    page.keyboard.press("?")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).not_to_be_visible()
    page.keyboard.press("?")
    expect(dialog).to_be_visible()
    page.get_by_role("button", name="Close").press("Enter")
    expect(dialog).not_to_be_visible()


def test_e_opens_an_email_to_the_lead(new_context, sandbox, user):
    context = new_context()
    # Catch the mailto: navigation before the browser hands it to a mail program.
    context.add_init_script(
        """
        window.__mailto = [];
        document.addEventListener("click", event => {
          const link = event.target.closest("a[href^='mailto:']");
          if (link) { window.__mailto.push(link.href); event.preventDefault(); }
        }, true);
        """
    )
    page = context.new_page()
    log_in(page)
    page.keyboard.press("e")
    assert page.evaluate("window.__mailto") == ["mailto:john.doe@example.com"]
