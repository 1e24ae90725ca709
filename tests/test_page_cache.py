"""What a lead page view costs once its lead is cached, and that nothing it keeps goes stale.

A warm view reads its workspace, permissions and "Changed here" rows from the
shared cache and reuses its rendered lead cards (issue 8); each of those copies
is replaced the moment the row or the lead behind it changes.
"""

from __future__ import annotations

import datetime
import math
import os
import random
import re
import time
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache, caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leads import auth, exports, freshness, services, updates
from leads import cache as cache_module
from leads.models import LeadChange, Workspace
from sandbox.data import DEMO_API_KEY, SEED_LEAD

pytestmark = pytest.mark.django_db

SEED_ID = SEED_LEAD["id"]
SEED_URL = f"/leads/{SEED_ID}/"
LEAD_API_PATH = f"/api/v1/leads/{SEED_ID}"


def lead_gets(sandbox: Any) -> int:
    return sum(1 for r in sandbox.app.requests if r.method == "GET" and r.path == LEAD_API_PATH)


def queries_of(client: Any, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return [query["sql"] for query in captured.captured_queries]


def save_workspace(base_url: str) -> Workspace:
    workspace = Workspace(name="W", base_url=base_url)
    workspace.set_api_key(DEMO_API_KEY)
    workspace.save()
    return workspace


@pytest.fixture
def shared_cache(settings, tmp_path):
    """A default cache every process shares, without Redis: files in a scratch folder.

    Copies of rows are kept only in a shared cache (leads.cache.row_copy); the
    suite's default, local memory, reads them from the database.
    """
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        },
    }
    yield
    caches["default"].clear()


@pytest.fixture
def per_process_cache(settings):
    """Local memory, each process's own (the laptop default), even where CI sets Redis."""
    settings.CACHES = {
        **settings.CACHES,
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }


def use_cache(request: pytest.FixtureRequest, kind: str) -> None:
    request.getfixturevalue("shared_cache" if kind == "shared" else "per_process_cache")


def a_change(user: Any, name: str = "Sam Seller") -> LeadChange:
    return LeadChange.objects.create(
        user=user,
        user_name=name,
        lead_id=SEED_ID,
        action=LeadChange.Action.STATUS,
        fields=["status"],
        before={"status": "new"},
        after={"status": "contacted"},
    )


# --- the database is not asked on a warm view --------------------------------------------


def test_a_warm_view_asks_the_database_only_for_the_session_user(
    shared_cache, seller_client, sandbox
):
    save_workspace(sandbox.base_url)
    seller_client.get(SEED_URL)  # fills the caches: lead, workspace, permissions, changes

    sql = queries_of(seller_client, SEED_URL)

    # Django's session middleware loads the user; nothing else reaches the database.
    assert len(sql) == 1, sql
    assert "auth_user" in sql[0]
    assert lead_gets(sandbox) == 1


def test_with_a_per_process_cache_rows_are_read_from_the_database(
    per_process_cache, seller_client, sandbox
):
    # Local memory is each process's own: a copy kept there could go stale in the others.
    assert not cache_module.shared_between_processes()
    save_workspace(sandbox.base_url)
    seller_client.get(SEED_URL)
    sql = " ".join(queries_of(seller_client, SEED_URL))
    for table in ("leads_workspace", "auth_permission", "leads_leadchange"):
        assert table in sql


@pytest.mark.parametrize("cache_kind", ["shared", "per-process"])
def test_the_update_forms_still_follow_the_users_permissions(
    cache_kind, request, seller_client, seller, sandbox
):
    use_cache(request, cache_kind)
    assert 'id="actions-heading"' in seller_client.get(SEED_URL).content.decode()

    seller.groups.clear()  # taken out of Sales in the admin
    assert 'id="actions-heading"' not in seller_client.get(SEED_URL).content.decode()

    sales = Group.objects.get(name="Sales")
    seller.groups.add(sales)
    assert 'id="actions-heading"' in seller_client.get(SEED_URL).content.decode()

    sales.permissions.clear()  # the group itself loses the permission
    assert 'id="actions-heading"' not in seller_client.get(SEED_URL).content.decode()


def test_a_permission_given_to_the_user_directly_applies_on_the_next_view(
    shared_cache, sales_client, sales_user, sandbox
):
    assert 'id="actions-heading"' not in sales_client.get(SEED_URL).content.decode()
    sales_user.user_permissions.add(Permission.objects.get(codename="change_lead"))
    assert 'id="actions-heading"' in sales_client.get(SEED_URL).content.decode()


def fresh(user: Any) -> Any:
    """The user as the next request loads it (no per-request permission memo)."""
    return type(user).objects.get(pk=user.pk)


def test_a_permission_set_read_during_a_change_is_not_used_after_its_commit(
    shared_cache, sales_user, django_capture_on_commit_callbacks
):
    backend = auth.CachedPermissionsBackend()
    assert backend.get_all_permissions(fresh(sales_user)) == set()  # starts a generation
    with django_capture_on_commit_callbacks(execute=True):
        sales_user.user_permissions.add(Permission.objects.get(codename="change_lead"))
        # Another request reads the database mid-change and keeps what it saw:
        # here a stand-in, the set from before the change under the new token.
        generation = cache.get(auth.GENERATION_KEY)
        key = f"leadsite:perms:user:{sales_user.pk}:0"
        cache.set(key, (generation, frozenset()), auth.PERMISSIONS_TTL)
        assert backend.get_all_permissions(fresh(sales_user)) == set()
    # The commit replaced the token: that set is never used again.
    assert backend.get_all_permissions(fresh(sales_user)) == {"leads.change_lead"}


def test_a_demoted_superuser_keeps_none_of_the_superusers_permissions(shared_cache, sales_user):
    backend = auth.CachedPermissionsBackend()
    sales_user.is_superuser = True
    sales_user.save()
    assert "leads.change_workspace" in backend.get_all_permissions(fresh(sales_user))
    sales_user.is_superuser = False
    sales_user.save()
    assert backend.get_all_permissions(fresh(sales_user)) == set()


def test_permissions_are_read_from_the_database_when_the_cache_was_emptied(
    shared_cache, sales_user
):
    backend = auth.CachedPermissionsBackend()
    assert backend.get_all_permissions(fresh(sales_user)) == set()
    sales_user.user_permissions.add(Permission.objects.get(codename="change_lead"))
    cache.clear()
    assert backend.get_all_permissions(fresh(sales_user)) == {"leads.change_lead"}


def test_an_inactive_user_has_no_permissions_even_if_cached(shared_cache, seller):
    backend = auth.CachedPermissionsBackend()
    assert backend.get_all_permissions(fresh(seller)) == {"leads.change_lead"}
    seller.is_active = False
    seller.save()
    assert backend.get_all_permissions(fresh(seller)) == set()


# --- one cache round trip for the page's reads -----------------------------------------


def test_read_ahead_answers_each_key_once_as_the_cache_held_it():
    cache.set("a", 1)
    with cache_module.read_ahead(["a", "b"]):
        cache.set("a", 2)  # written after the read ahead
        assert cache_module.get_many(["a", "b"]) == {"a": 1}  # as read: "b" held nothing
        # Read again (after a module's own write, say): the cache answers.
        assert cache_module.get_many(["a"]) == {"a": 2}
        cache.set("c", 3)
        # Keys not all read ahead: the cache answers for all of them.
        assert cache_module.get_many(["b", "c"]) == {"c": 3}
        assert cache_module.get_many(["b"]) == {}
    assert cache_module.get_many(["a"]) == {"a": 2}


def test_after_a_call_the_reads_made_ahead_are_made_again():
    cache.set("a", 1)
    with cache_module.read_ahead(["a"]):
        cache.set("a", 2)  # changed while the request waited on PollyBot
        cache_module.read_ahead_is_old()
        assert cache_module.get_many(["a"]) == {"a": 2}


def test_a_change_made_while_the_page_called_pollybot_shows_on_that_page(
    shared_cache, seller_client, seller, sandbox, settings
):
    save_workspace(sandbox.base_url)
    assert "No changes made from this site yet." in seller_client.get(SEED_URL).content.decode()
    settings.POLLYBOT_CACHE_TTL = 0  # the next view calls PollyBot
    calling = freshness._single_flight

    def meanwhile(*args: Any, **kwargs: Any) -> Any:
        answer = calling(*args, **kwargs)
        a_change(seller)  # someone's change lands while the call is in flight
        return answer

    with mock.patch.object(freshness, "_single_flight", side_effect=meanwhile):
        html = seller_client.get(SEED_URL).content.decode()
    assert lead_gets(sandbox) == 2
    assert "Sam Seller" in html


def cache_reads(backend: Any) -> list[tuple[str, list[str]]]:
    """Wraps the backend's read methods; the list fills with (method, keys) as they are called.

    Only outermost calls count: the file cache's get_many calls its own get per key.
    """
    calls: list[tuple[str, list[str]]] = []
    depth = [0]
    for name in ("get", "get_many"):
        real = getattr(backend, name)

        def recorder(keys: Any, *args: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            if not depth[0]:
                calls.append((_name, [keys] if isinstance(keys, str) else list(keys)))
            depth[0] += 1
            try:
                return _real(keys, *args, **kw)
            finally:
                depth[0] -= 1

        setattr(backend, name, recorder)
    return calls


def test_a_warm_view_reads_the_shared_cache_in_one_round_trip(
    shared_cache, seller_client, seller, sandbox
):
    save_workspace(sandbox.base_url)
    a_change(seller)
    seller_client.get(SEED_URL)  # fills the caches
    backend = caches["default"]
    calls = cache_reads(backend)
    try:
        page = seller_client.get(SEED_URL)
    finally:
        del backend.get, backend.get_many
    assert page.status_code == 200
    assert 'id="actions-heading"' in page.content.decode()  # permissions were read
    assert "Sam Seller" in page.content.decode()  # so were the changes
    # Django's session store reads the session first: its own key, its own cache.
    reads = [(name, keys) for name, keys in calls if not any("session" in k for k in keys)]
    assert len(reads) == 1, reads
    name, keys = reads[0]
    assert name == "get_many"
    for expected in (
        services.WORKSPACE_CACHE_KEY,
        f"leadsite:recent:{seller.pk}",
        f"leadsite:perms:user:{seller.pk}:0",
        f"leadsite:changes:{SEED_ID}",
    ):
        assert expected in keys
    assert any(key.endswith(f":copy:{SEED_ID}") for key in keys)
    assert lead_gets(sandbox) == 1


def test_after_a_workspace_change_the_lead_is_read_under_the_new_key(
    shared_cache, seller_client, sandbox
):
    # The page reads the lead's keys ahead under the connection it used last;
    # a new key is a new namespace: that read is not used, the new copy is fetched.
    workspace = save_workspace(sandbox.base_url)
    assert seller_client.get(SEED_URL).status_code == 200
    workspace.set_api_key(DEMO_API_KEY)
    workspace.save()
    assert seller_client.get(SEED_URL).status_code == 200
    assert lead_gets(sandbox) == 2
    assert seller_client.get(SEED_URL).status_code == 200
    assert lead_gets(sandbox) == 2


# --- the saved workspace ---------------------------------------------------------------


def test_the_saved_workspace_is_read_from_the_database_once(shared_cache, sandbox):
    save_workspace(sandbox.base_url)  # the save starts a new generation
    with CaptureQueriesContext(connection) as first:
        services.get_connection()
    with CaptureQueriesContext(connection) as second:
        connection_again = services.get_connection()
    assert any("leads_workspace" in q["sql"] for q in first.captured_queries)
    assert second.captured_queries == []
    assert connection_again.api_key == DEMO_API_KEY


def test_saving_or_deleting_the_workspace_applies_at_once(shared_cache, sandbox, settings):
    settings.POLLYBOT_BASE_URL = "https://env.example.com"
    services.get_connection()
    assert services.get_connection().base_url == "https://env.example.com"  # cached: none saved

    workspace = save_workspace(sandbox.base_url)
    assert services.get_connection().namespace == "workspace-v1"

    workspace.base_url = "https://other.example.com"
    workspace.save()
    assert services.get_connection().base_url == "https://other.example.com"
    assert services.get_connection().namespace == "workspace-v2"

    workspace.delete()
    assert services.get_connection().base_url == "https://env.example.com"


def test_a_copy_read_during_a_save_is_not_used_after_its_commit(
    shared_cache, sandbox, django_capture_on_commit_callbacks
):
    save_workspace(sandbox.base_url)
    services.get_connection()  # starts the generation
    with django_capture_on_commit_callbacks(execute=True):
        workspace = Workspace.objects.get()
        workspace.base_url = "https://new.example.com"
        workspace.save()
        # A reader that read the row before the save stores it under the new token.
        generation = cache.get(services.WORKSPACE_GENERATION_KEY)
        old = services.SavedWorkspace(sandbox.base_url, workspace.encrypted_api_key, 1)
        cache.set(services.WORKSPACE_CACHE_KEY, (generation, old), services.WORKSPACE_CACHE_TTL)
        assert services.get_connection().base_url == sandbox.base_url
    assert services.get_connection().base_url == "https://new.example.com"


def test_the_shared_copy_never_holds_the_plain_key(shared_cache, sandbox):
    save_workspace(sandbox.base_url)
    services.get_connection()
    services.get_connection()
    entry = cache.get(services.WORKSPACE_CACHE_KEY)
    assert isinstance(entry[1], services.SavedWorkspace)
    assert DEMO_API_KEY not in repr(entry)
    assert DEMO_API_KEY not in entry[1].encrypted_api_key


# --- "Changed here" --------------------------------------------------------------------


@pytest.mark.parametrize("cache_kind", ["shared", "per-process"])
def test_changed_here_shows_a_new_change_on_the_next_view(
    cache_kind, request, sales_client, sales_user, sandbox
):
    use_cache(request, cache_kind)
    assert "No changes made from this site yet." in sales_client.get(SEED_URL).content.decode()
    sales_client.get(SEED_URL)
    a_change(sales_user)
    html = sales_client.get(SEED_URL).content.decode()
    assert "Sam Seller" in html
    assert "No changes made from this site yet." not in html


def test_changed_here_rows_read_during_a_change_are_not_used_after_its_commit(
    shared_cache, sales_user, django_capture_on_commit_callbacks
):
    updates.recent_changes(lead_id=SEED_ID)  # starts the generation
    with django_capture_on_commit_callbacks(execute=True):
        a_change(sales_user, name="Sam")
        # A reader that read the rows before the change keeps them under the new token.
        generation = cache.get(updates._changes_generation_key(SEED_ID))
        cache.set(f"leadsite:changes:{SEED_ID}", (generation, []), updates.CHANGES_CACHE_TTL)
        assert updates.recent_changes(lead_id=SEED_ID) == []
    assert [line.author for line in updates.recent_changes(lead_id=SEED_ID)] == ["Sam"]


# --- the rendered lead cards -----------------------------------------------------------


def as_user(user: Any) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def test_the_lead_cards_are_rendered_once_per_copy(sales_user, staff_user, sandbox):
    with mock.patch.object(
        exports, "google_calendar_url", wraps=exports.google_calendar_url
    ) as built:
        first = as_user(sales_user).get(SEED_URL).content.decode()
        # Another viewer: a page of their own, with the same lead cards.
        second = as_user(staff_user).get(SEED_URL).content.decode()
    assert built.call_count == 1  # built once, for the first view; the second reused the card
    assert "John Doe" in second
    assert first.count('class="card') == second.count('class="card')


def test_a_copy_is_parsed_once_a_day_and_each_new_copy_afresh(sales_client, sandbox):
    from leads.lead import Lead

    with mock.patch.object(Lead, "from_api", wraps=Lead.from_api) as parse:
        sales_client.get(SEED_URL)
        sales_client.get(SEED_URL)
        assert parse.call_count == 1
        sandbox.app.set_leads([dict(SEED_LEAD, name="Johnny Doe")])
        sales_client.post(f"/leads/{SEED_ID}/refresh/")  # a new copy
        assert "Johnny Doe" in sales_client.get(SEED_URL).content.decode()
        assert parse.call_count == 2
        # The next day, the same copy reads differently ("Overdue", "Tomorrow").
        tomorrow = timezone.localdate() + datetime.timedelta(days=1)
        with mock.patch("leads.services.timezone.localdate", return_value=tomorrow):
            sales_client.get(SEED_URL)
        assert parse.call_count == 3


# --- the page kept as rendered ---------------------------------------------------------

_CSRF_VALUE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def rendered_pages() -> Any:
    """Counts the detail pages rendered from the template (leads.views.render)."""
    from leads import views

    return mock.patch.object(views, "render", wraps=views.render)


def test_a_page_opened_again_is_not_rendered_again_and_its_forms_still_work(sales_user, sandbox):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(sales_user)
    with rendered_pages() as render:
        first = browser.get(SEED_URL).content.decode()
        second = browser.get(SEED_URL).content.decode()
    assert render.call_count == 1
    assert "John Doe" in second
    # Each response has its own token (as a fresh render would), and it works.
    tokens = set(_CSRF_VALUE.findall(second))
    assert len(tokens) == 1
    assert tokens.isdisjoint(_CSRF_VALUE.findall(first))
    refreshed = browser.post(f"/leads/{SEED_ID}/refresh/", {"csrfmiddlewaretoken": tokens.pop()})
    assert refreshed.status_code == 302


def test_the_kept_page_is_the_page_rendered_afresh(seller_client, seller, sandbox):
    a_change(seller)  # the update forms and "Changed here" are on the page too
    seller_client.get(SEED_URL)
    with rendered_pages() as render:
        kept = seller_client.get(SEED_URL).content.decode()
    assert render.call_count == 0  # the kept page
    caches["pages"].clear()
    with rendered_pages() as render:
        afresh = seller_client.get(SEED_URL).content.decode()
    assert render.call_count == 1
    assert 'id="actions-heading"' in kept
    assert _CSRF_VALUE.sub("", kept) == _CSRF_VALUE.sub("", afresh)


def test_each_viewer_gets_a_page_of_their_own(sales_user, staff_user, sandbox):
    mine = as_user(sales_user).get(SEED_URL).content.decode()
    theirs = as_user(staff_user).get(SEED_URL).content.decode()
    assert 'Log out<span class="visually-hidden"> sam</span>' in mine
    assert 'Log out<span class="visually-hidden"> ada</span>' in theirs
    assert ">Admin</a>" in theirs
    assert ">Admin</a>" not in mine


def test_a_viewer_made_staff_sees_the_admin_link_on_the_next_view(
    sales_client, sales_user, sandbox
):
    assert ">Admin</a>" not in sales_client.get(SEED_URL).content.decode()
    sales_user.is_staff = True
    sales_user.save()
    assert ">Admin</a>" in sales_client.get(SEED_URL).content.decode()


def test_a_message_is_shown_once_and_never_kept(sales_client, sandbox):
    sales_client.get(SEED_URL)
    sales_client.post(f"/leads/{SEED_ID}/refresh/")
    # A second Refresh within seconds says so on the page it goes back to.
    again = sales_client.post(f"/leads/{SEED_ID}/refresh/", follow=True).content.decode()
    assert "refreshed from PollyBot moments ago" in again
    after = sales_client.get(SEED_URL).content.decode()
    assert "refreshed from PollyBot moments ago" not in after
    assert "John Doe" in after


def test_previous_and_next_show_only_on_a_page_opened_from_the_list(sales_client, sandbox):
    listing = sales_client.get("/leads/", {"limit": "10"}).content.decode()
    link = re.findall(r'<th scope="row" data-label="Name"><a href="([^"]+)">', listing)[1]
    direct = link.replace("&amp;", "&").split("?")[0]
    assert "Leads in the list" not in sales_client.get(direct).content.decode()
    from_list = sales_client.get(link.replace("&amp;", "&")).content.decode()
    assert 'rel="prev"' in from_list
    assert 'rel="next"' in from_list
    assert "Leads in the list" not in sales_client.get(direct).content.decode()


def test_a_refresh_shows_the_new_fetched_time(sales_client, sandbox):
    first = sales_client.get(SEED_URL).content.decode()
    with mock.patch.object(freshness, "_now", return_value=time.time() + 120):
        sales_client.post(f"/leads/{SEED_ID}/refresh/")
        later = sales_client.get(SEED_URL).content.decode()
    fetched = re.compile(r"Fetched from PollyBot <time datetime=\"([^\"]+)\"")
    assert fetched.findall(first) != fetched.findall(later)


def test_a_new_copy_of_the_lead_renders_afresh(sales_client, sandbox, settings):
    assert "John Doe" in sales_client.get(SEED_URL).content.decode()
    sandbox.app.set_leads([dict(SEED_LEAD, name="Johnny Doe", phone="+1-555-0199")])
    settings.POLLYBOT_CACHE_TTL = 0  # the next view fetches the changed lead
    html = sales_client.get(SEED_URL).content.decode()
    assert "Johnny Doe" in html
    assert "+1-555-0199" in html
    assert "John Doe<" not in html


def test_the_cards_follow_the_host_the_page_was_opened_on(sales_client, sandbox, settings):
    settings.ALLOWED_HOSTS = ["leads.example.com", "crm.example.com"]
    one = sales_client.get(SEED_URL, HTTP_HOST="leads.example.com").content.decode()
    two = sales_client.get(SEED_URL, HTTP_HOST="crm.example.com").content.decode()
    assert f"http://leads.example.com{SEED_URL}" in one
    assert f"http://crm.example.com{SEED_URL}" in two
    assert "leads.example.com" not in two


def test_the_follow_up_state_follows_the_calendar(sales_client, sandbox):
    due = timezone.localdate() + datetime.timedelta(days=1)
    lead = dict(SEED_LEAD, metadata={**SEED_LEAD["metadata"], "follow_up_date": due.isoformat()})
    sandbox.app.set_leads([lead])
    assert "Tomorrow" in sales_client.get(SEED_URL).content.decode()

    # Two days later (the cached copy unchanged), the same card says it is overdue.
    later = timezone.localdate() + datetime.timedelta(days=2)
    with mock.patch("leads.services.timezone.localdate", return_value=later):
        html = sales_client.get(SEED_URL).content.decode()
    assert "Tomorrow" not in html
    assert "Overdue" in html
    assert lead_gets(sandbox) == 1


def test_the_activity_card_keeps_its_relative_times_current(sales_client, sandbox):
    just_now = timezone.now().isoformat().replace("+00:00", "Z")
    lead = dict(SEED_LEAD, metadata={**SEED_LEAD["metadata"], "last_interaction": just_now})
    sandbox.app.set_leads([lead])
    assert "(now)" in sales_client.get(SEED_URL).content.decode()

    class ThreeHoursLater(datetime.datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return datetime.datetime.now(tz) + datetime.timedelta(hours=3)

    # humanize's clock moves on; the lead and its cached copy do not.
    with mock.patch("django.contrib.humanize.templatetags.humanize.datetime", ThreeHoursLater):
        html = sales_client.get(SEED_URL).content.decode()
    assert "(3\xa0hours ago)" in html
    assert "(now)" not in html
    assert lead_gets(sandbox) == 1


class FrozenClock(datetime.datetime):
    """humanize's clock, set by the test (`at`)."""

    at = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)

    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        return cls.at


def lead_of_one_moment(moment: datetime.datetime) -> Any:
    """A lead created, updated and last in touch at `moment`."""
    from leads.lead import Lead

    return Lead.from_api(
        dict(
            SEED_LEAD,
            createdAt=moment.isoformat(),
            updatedAt=moment.isoformat(),
            metadata={**SEED_LEAD["metadata"], "last_interaction": moment.isoformat()},
        ),
        today=moment.date(),
    )


@pytest.fixture
def frozen_clock(monkeypatch):
    from django.contrib.humanize.templatetags import humanize

    monkeypatch.setattr(humanize, "datetime", FrozenClock)
    return FrozenClock


def test_the_age_steps_change_whenever_naturaltimes_text_can(frozen_clock):
    # The kept page's key holds _age_steps instead of the texts: two moments of
    # the clock with the same steps must give the same texts.
    from django.contrib.humanize.templatetags import humanize

    from leads import views

    rng = random.Random(20261126)
    moment = datetime.datetime(2025, 3, 30, 0, 59, 58, tzinfo=datetime.UTC)  # near DST
    lead = lead_of_one_moment(moment)

    def seen(at: datetime.datetime) -> tuple[object, str]:
        frozen_clock.at = at
        return views._age_steps(lead), humanize.naturaltime(moment)

    same_step = 0
    for _ in range(4000):
        # Two moments of the clock up to an hour apart, the lead's moments a
        # second to three years before or after them (at whole seconds).
        age = int(math.exp(rng.uniform(0, math.log(3 * 365 * 86400))))
        later = age + int(math.exp(rng.uniform(0, math.log(3600))))
        sign = rng.choice((1, -1))
        steps_one, text_one = seen(moment + sign * datetime.timedelta(seconds=age))
        steps_two, text_two = seen(moment + sign * datetime.timedelta(seconds=later))
        if steps_one == steps_two:
            same_step += 1
            assert text_one == text_two, (sign, age, later)
    assert same_step > 400  # enough pairs to mean something


def test_the_age_steps_follow_calendar_months_that_turn_at_midnight(frozen_clock):
    # A moment on the 31st: timesince counts "4 weeks" until the end of February
    # and "1 month" from 1 March at midnight, at no whole hour of its age.
    from django.contrib.humanize.templatetags import humanize

    from leads import views

    moment = datetime.datetime(2025, 1, 31, 10, 20, 33, tzinfo=datetime.UTC)
    lead = lead_of_one_moment(moment)
    seen = []
    for at in (
        datetime.datetime(2025, 2, 28, 23, 59, 30, tzinfo=datetime.UTC),
        datetime.datetime(2025, 3, 1, 0, 0, 30, tzinfo=datetime.UTC),
    ):
        frozen_clock.at = at
        seen.append((views._age_steps(lead), humanize.naturaltime(moment)))
    (steps_before, text_before), (steps_after, text_after) = seen
    assert text_before != text_after
    assert steps_before != steps_after


@pytest.mark.parametrize("alias", ["fragments", "pages"])
def test_the_rendered_caches_are_each_processs_own_and_bounded(alias):
    from django.conf import settings

    options = settings.CACHES[alias]
    assert options["BACKEND"].endswith("LocMemCache")  # in memory: no round trip for a hit
    assert options["OPTIONS"]["MAX_ENTRIES"] <= 1000
    assert options["LOCATION"] not in {
        settings.CACHES[other].get("LOCATION") for other in settings.CACHES if other != alias
    }  # its own store: pages never push out the cards


# --- the Redis backend's client --------------------------------------------------------


@pytest.mark.skipif(
    not os.environ.get("CACHE_URL", "").startswith("redis://"),
    reason="needs CACHE_URL=redis://… (set by .ci/run)",
)
def test_the_redis_backend_reuses_one_client_and_still_works():
    from leads.cache import RedisCache

    backend = caches["default"]
    assert isinstance(backend, RedisCache)
    client = backend._cache.get_client(write=True)
    backend.set("leadsite:test:reuse", {"a": 1}, 30)
    assert backend.get("leadsite:test:reuse") == {"a": 1}
    assert backend._cache.get_client() is client
    assert backend.get_many(["leadsite:test:reuse", "leadsite:test:none"]) == {
        "leadsite:test:reuse": {"a": 1}
    }


@pytest.mark.skipif(
    not os.environ.get("CACHE_URL", "").startswith("redis://"),
    reason="needs CACHE_URL=redis://… (set by .ci/run)",
)
def test_the_redis_backend_deletes_a_lock_only_for_its_owner():
    backend = caches["default"]
    assert backend.add("leadsite:test:lock", "owner-token", 30)
    assert backend.delete_if_equal("leadsite:test:lock", "another-token") is False
    assert backend.get("leadsite:test:lock") == "owner-token"
    assert backend.delete_if_equal("leadsite:test:lock", "owner-token") is True
    assert backend.get("leadsite:test:lock") is None
    assert backend.delete_if_equal("leadsite:test:lock", "owner-token") is False


def test_migrate_makes_copies_out_of_date(shared_cache, sales_user):
    from leads import signals

    auth.CachedPermissionsBackend().get_all_permissions(fresh(sales_user))
    services.saved_workspace()
    before = cache.get_many([auth.GENERATION_KEY, services.WORKSPACE_GENERATION_KEY])
    signals.migrated()
    after = cache.get_many([auth.GENERATION_KEY, services.WORKSPACE_GENERATION_KEY])
    assert len(before) == 2
    assert before[auth.GENERATION_KEY] != after[auth.GENERATION_KEY]
    assert before[services.WORKSPACE_GENERATION_KEY] != after[services.WORKSPACE_GENERATION_KEY]


def test_migrate_does_not_fail_when_the_cache_is_unreachable(monkeypatch, caplog):
    from leads import signals

    def unreachable() -> None:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(auth, "permissions_changed", unreachable)
    signals.migrated()  # no exception: the migration carries on
    assert "could not mark cached rows out of date" in caplog.text
