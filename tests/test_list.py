"""The list of leads, the lookup box, recently viewed, previous/next: against the sandbox."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from sandbox.data import SEED_LEAD

pytestmark = pytest.mark.django_db

STATUS_COUNTS = {
    "new": 8,
    "contacted": 9,
    "qualified": 7,
    "converted": 6,
    "lost": 6,
    "follow_up": 7,
}


def list_calls(sandbox) -> list[str]:
    return [r.query for r in sandbox.app.requests if r.path == "/api/v1/leads"]


def names_on(html: str) -> list[str]:
    return re.findall(r'<th scope="row" data-label="Name"><a href="[^"]+">([^<]+)</a>', html)


def test_home_sends_a_logged_in_user_to_the_list(sales_client):
    assert sales_client.get("/")["Location"] == "/leads/"


def test_the_list_shows_the_total_and_the_columns(sales_client, sandbox):
    response = sales_client.get("/leads/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "43 leads" in html
    assert "page 1 of 3" in html
    assert len(names_on(html)) == 20
    for column in ["Name", "Company", "Status", "Follow-up", "Created"]:
        assert f'<th scope="col">{column}</th>' in html
    assert "Overdue by" in html  # the follow-up state in words
    assert list_calls(sandbox) == ["page=1&limit=20"]


def test_search_matches_name_and_email(sales_client, sandbox):
    by_name = sales_client.get("/leads/", {"q": "priya"}).content.decode()
    assert names_on(by_name) == ["Priya Raman"]
    by_email = sales_client.get("/leads/", {"q": "northwind.example"}).content.decode()
    assert "Priya Raman" in names_on(by_email)
    assert list_calls(sandbox)[0] == "page=1&limit=20&search=priya"


@pytest.mark.parametrize(("status", "count"), STATUS_COUNTS.items())
def test_each_status_filter(sales_client, sandbox, status, count):
    html = sales_client.get("/leads/", {"status": status}).content.decode()
    assert f"{count} leads" in html
    assert len(names_on(html)) == count
    assert html.count(f'class="badge status-{status.replace("_", "-")}"') == count


def test_the_source_filter(sales_client, sandbox):
    html = sales_client.get("/leads/", {"source": "trade_show"}).content.decode()
    assert "4 leads" in html
    assert list_calls(sandbox) == ["page=1&limit=20&source=trade_show"]


def test_pagination_first_last_and_past_the_end(sales_client, sandbox):
    first = sales_client.get("/leads/", {"limit": "20"}).content.decode()
    assert 'rel="next"' in first
    assert 'rel="prev"' not in first
    last = sales_client.get("/leads/", {"page": "3"}).content.decode()
    assert len(names_on(last)) == 3
    assert 'rel="prev"' in last
    assert 'rel="next"' not in last
    past = sales_client.get("/leads/", {"page": "9"})
    assert past.status_code == 200
    html = past.content.decode()
    assert "Page 9 is past the end" in html
    assert "Go to the last page" in html
    assert "page=3" in html


def test_filters_are_kept_in_the_paging_links(sales_client, sandbox):
    html = sales_client.get("/leads/", {"source": "website", "limit": "10"}).content.decode()
    assert "11 leads" in html
    next_page = re.search(r'rel="next" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert "source=website" in next_page
    assert "limit=10" in next_page
    assert "page=2" in next_page


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "500"}, "at most 100"),
        ({"limit": "abc"}, "at most 100"),
        ({"status": "hot"}, "“hot” is not a lead status."),
        ({"page": "0"}, "greater than or equal to 1"),
        ({"page": "two"}, "The page must be a number."),
        ({"source": "web<script>"}, "A source is a single word"),
        ({"q": "x" * 201}, "at most 200 characters"),
    ],
)
def test_unknown_filter_values_are_refused_and_not_sent(sales_client, sandbox, params, message):
    response = sales_client.get("/leads/", params)
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert "clear the filters" in html
    assert "<script>" not in html
    assert list_calls(sandbox) == []


def test_the_empty_state_offers_to_clear_the_filters(sales_client, sandbox):
    html = sales_client.get("/leads/", {"q": "nobody-by-this-name"}).content.decode()
    assert "No leads match “nobody-by-this-name”" in html
    assert "Clear the filters" in html


def test_the_same_list_twice_within_a_minute_costs_one_call(sales_client, sandbox):
    sales_client.get("/leads/", {"status": "lost"})
    sales_client.get("/leads/", {"status": "lost"})
    assert len(list_calls(sandbox)) == 1
    sales_client.get("/leads/", {"status": "new"})  # another query: its own call
    assert len(list_calls(sandbox)) == 2


def test_list_items_never_fill_the_detail_cache(sales_client, sandbox):
    sales_client.get("/leads/")
    html = sales_client.get(f"/leads/{SEED_LEAD['id']}/").content.decode()
    assert "ws_your_workspace_id" in html  # the complete lead, fetched on its own
    assert f"/api/v1/leads/{SEED_LEAD['id']}" in [r.path for r in sandbox.app.requests]


# --- the lookup box ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "location"),
    [
        ("lead_1234567890abcdef", "/leads/lead_1234567890abcdef/"),
        ("https://leads.example.com/leads/lead_1234567890abcdef/", "/leads/lead_1234567890abcdef/"),
        ("john.doe@example.com", "/leads/?q=john.doe%40example.com"),
        ("John Doe", "/leads/?q=John+Doe"),
    ],
)
def test_the_lookup_box(sales_client, query, location):
    response = sales_client.get("/leads/lookup/", {"q": query})
    assert response.status_code == 302
    assert response["Location"] == location


def test_a_searched_email_finds_the_lead(sales_client, sandbox):
    response = sales_client.get("/leads/lookup/", {"q": "john.doe@example.com"}, follow=True)
    assert names_on(response.content.decode()) == ["John Doe"]


# --- recently viewed -------------------------------------------------------------------


def open_leads(client: Client, sandbox, count: int) -> list[str]:
    ids = [lead["id"] for lead in sandbox.app.leads_snapshot()[:count]]
    for lead_id in ids:
        assert client.get(f"/leads/{lead_id}/").status_code == 200
    return ids


def recent_on(html: str) -> list[str]:
    section = html.split('id="recent-heading"', 1)[1] if 'id="recent-heading"' in html else ""
    return re.findall(r'<li><a href="/leads/(lead_[A-Za-z0-9]+)/">', section)


def test_recently_viewed_newest_first_at_most_ten_per_user(sales_client, staff_user, sandbox):
    opened = open_leads(sales_client, sandbox, 12)
    recent = recent_on(sales_client.get("/leads/").content.decode())
    assert recent == list(reversed(opened))[:10]
    # Opening one again moves it to the top, without a duplicate.
    sales_client.get(f"/leads/{opened[5]}/")
    recent = recent_on(sales_client.get("/leads/").content.decode())
    assert recent[0] == opened[5]
    assert len(recent) == len(set(recent)) == 10
    # Another user has their own list.
    other = Client()
    other.force_login(staff_user)
    assert recent_on(other.get("/leads/").content.decode()) == []


def test_recently_viewed_on_the_not_found_page(sales_client, sandbox):
    sales_client.get(f"/leads/{SEED_LEAD['id']}/")
    html = sales_client.get("/leads/lead_nosuchlead9/").content.decode()
    assert "Leads you opened recently" in html
    assert f'href="/leads/{SEED_LEAD["id"]}/"' in html


# --- previous and next -------------------------------------------------------------------


def test_previous_and_next_keep_the_filters_and_the_page(sales_client, sandbox):
    html = sales_client.get("/leads/", {"status": "contacted", "limit": "10"}).content.decode()
    links = re.findall(r'<th scope="row" data-label="Name"><a href="([^"]+)">', html)
    second = links[1].replace("&amp;", "&")
    assert "from=list" in second
    page = sales_client.get(second).content.decode()
    assert 'rel="prev"' in page
    assert 'rel="next"' in page
    assert "Back to the list" in page
    nav = page.split('aria-label="Leads in the list"', 1)[1].split("</nav>", 1)[0]
    assert links[0].split("?")[0] in nav  # previous: the first row
    assert links[2].split("?")[0] in nav  # next: the third row
    assert "status=contacted" in nav
    assert "limit=10" in nav


def test_next_crosses_to_the_following_page(sales_client, sandbox):
    html = sales_client.get("/leads/", {"limit": "10"}).content.decode()
    links = re.findall(r'<th scope="row" data-label="Name"><a href="([^"]+)">', html)
    page = sales_client.get(links[-1].replace("&amp;", "&")).content.decode()
    nav = page.split('aria-label="Leads in the list"', 1)[1].split("</nav>", 1)[0]
    assert "page=2" in nav


def test_a_detail_page_opened_directly_has_no_previous_or_next(sales_client, sandbox):
    html = sales_client.get(f"/leads/{SEED_LEAD['id']}/").content.decode()
    assert "Leads in the list" not in html
