"""The copy buttons (Clipboard API and the fallback) and the two downloads."""

from __future__ import annotations

import datetime

import icalendar
import pytest
import vobject
from playwright.sync_api import expect

from tests.browser.conftest import SEED_ID, SEED_PATH, log_in

CLIPBOARD = ["clipboard-read", "clipboard-write"]

# Without the Clipboard API (as over plain HTTP, where Chromium does not expose it to
# pages) site.js falls back to a selected textarea and execCommand("copy"). The spy
# records what was selected when the copy command ran, then lets it run.
NO_CLIPBOARD_API = """
delete Navigator.prototype.clipboard;
window.__copied = [];
const realExecCommand = Document.prototype.execCommand;
Document.prototype.execCommand = function (command, ...rest) {
  if (command === "copy") {
    const area = document.querySelector("body > textarea");
    window.__copied.push(area ? area.value.slice(area.selectionStart, area.selectionEnd) : null);
  }
  return realExecCommand.call(this, command, ...rest);
};
"""


def _expected(live_server) -> dict[str, str]:
    return {
        "email address": "john.doe@example.com",
        "phone number": "+1-555-123-4567",
        "lead ID": SEED_ID,
        "link": live_server.url + SEED_PATH,
    }


@pytest.mark.parametrize("what", ["email address", "phone number", "lead ID", "link"])
def test_a_copy_button_puts_the_value_on_the_clipboard_and_says_so(what, open_page, live_server):
    page = open_page(permissions=CLIPBOARD)
    page.get_by_role("button", name=f"Copy {what}").click()
    expect(page.locator("#live-status")).to_have_text(f"Copied the {what}.")
    assert page.evaluate("navigator.clipboard.readText()") == _expected(live_server)[what]


def test_without_the_clipboard_api_the_fallback_copies(new_context, sandbox, user, live_server):
    context = new_context(permissions=CLIPBOARD)
    context.add_init_script(NO_CLIPBOARD_API)
    page = context.new_page()
    log_in(page)
    assert page.evaluate("navigator.clipboard") is None
    expected = _expected(live_server)
    for what in ["email address", "lead ID"]:
        page.get_by_role("button", name=f"Copy {what}").click()
        expect(page.locator("#live-status")).to_have_text(f"Copied the {what}.")
    assert page.evaluate("window.__copied") == [expected["email address"], SEED_ID]
    # And it reached the system clipboard: paste it into a field.
    page.evaluate(
        "() => { const f = document.createElement('textarea'); f.id = 'paste';"
        " document.querySelector('main').append(f); }"
    )
    page.locator("#paste").focus()
    page.keyboard.press("Control+V")
    expect(page.locator("#paste")).to_have_value(SEED_ID)


def test_save_contact_downloads_a_vcard_of_the_lead(open_page):
    page = open_page()
    with page.expect_download() as download:
        page.get_by_role("link", name="Save contact").click()
    assert download.value.suggested_filename.endswith(".vcf")
    card = vobject.readOne(download.value.path().read_text(encoding="utf-8"))
    assert card.fn.value == "John Doe"
    assert card.email.value == "john.doe@example.com"
    assert card.tel.value == "+1-555-123-4567"
    assert card.org.value == ["Tech Corp"]


def test_the_calendar_file_is_an_all_day_follow_up(open_page):
    page = open_page()
    with page.expect_download() as download:
        page.get_by_role("link", name="Calendar file (.ics)").click()
    assert download.value.suggested_filename.endswith(".ics")
    calendar = icalendar.Calendar.from_ical(download.value.path().read_bytes())
    (event,) = calendar.walk("VEVENT")
    start = event.decoded("DTSTART")
    assert type(start) is datetime.date  # a date, not a datetime: all day
    assert start == datetime.date(2024, 1, 20)
    assert "John Doe" in str(event["SUMMARY"])
