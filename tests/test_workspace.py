"""The workspace connection kept by admins: encryption, admin form, checks, precedence."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection as db
from django.db import connections
from django.db.models.signals import pre_save

from leads import encryption
from leads.models import Workspace
from sandbox.data import DEMO_API_KEY, SEED_LEAD

pytestmark = pytest.mark.django_db

NEW_KEY = "sk-workspace_" + "N" * 47 + "9876"
CHANGE_URL = "/admin/leads/workspace/1/change/"
SEED_URL = f"/leads/{SEED_LEAD['id']}/"


def save_workspace(*, base_url: str, api_key: str, name: str = "Acme sales") -> Workspace:
    workspace = Workspace(name=name, base_url=base_url)
    workspace.set_api_key(api_key)
    workspace.save()
    return workspace


def raw_key_column() -> str:
    with db.cursor() as cursor:
        cursor.execute("SELECT encrypted_api_key FROM leads_workspace")
        (value,) = cursor.fetchone()
    return value


@pytest.fixture
def admin_client(client):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456789")
    client.force_login(admin)
    return client


@pytest.fixture(autouse=True)
def allow_http_sandbox(settings):
    settings.POLLYBOT_ALLOW_HTTP_LOCALHOST = True


# --- encryption at rest --------------------------------------------------------


def test_the_key_round_trips_and_the_database_never_holds_it():
    workspace = save_workspace(base_url="https://api.example.com", api_key=NEW_KEY)
    stored = raw_key_column()
    assert "sk-workspace_" not in stored
    assert "N" * 47 not in stored
    assert Workspace.objects.get().api_key == NEW_KEY
    assert workspace.encrypted_api_key == stored


def test_rotating_secret_key_with_the_old_one_as_fallback_still_decrypts(settings):
    save_workspace(base_url="https://api.example.com", api_key=NEW_KEY)
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "a-brand-new-secret-key-" + "z" * 40
    settings.SECRET_KEY_FALLBACKS = [old]
    assert Workspace.objects.get().api_key == NEW_KEY
    assert encryption.needs_rotation(raw_key_column())


def test_an_undecryptable_key_gives_the_not_configured_page(settings, sandbox, client):
    save_workspace(base_url=sandbox.base_url, api_key=DEMO_API_KEY)
    settings.SECRET_KEY = "a-brand-new-secret-key-" + "y" * 40
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(encryption.Undecryptable):
        Workspace.objects.get().api_key  # noqa: B018
    staff = get_user_model().objects.create_user("ada", password="pw-123456789", is_staff=True)
    client.force_login(staff)
    response = client.get(SEED_URL)
    assert response.status_code == 503
    html = response.content.decode()
    assert "can no longer be decrypted" in html
    assert "/admin/leads/workspace/" in html
    assert sandbox.app.requests == []


# --- the admin form ---------------------------------------------------------


def test_admin_adds_a_workspace_and_the_key_is_never_sent_back(admin_client, sandbox):
    response = admin_client.post(
        "/admin/leads/workspace/add/",
        {"name": "Acme sales", "base_url": sandbox.base_url + "/", "api_key": DEMO_API_KEY},
    )
    assert response.status_code == 302
    workspace = Workspace.objects.get()
    assert workspace.base_url == sandbox.base_url  # trailing slash trimmed
    assert workspace.api_key == DEMO_API_KEY

    page = admin_client.get(CHANGE_URL).content.decode()
    assert DEMO_API_KEY not in page
    assert DEMO_API_KEY[13:-4] not in page  # not even the secret's middle
    assert "sk-workspace_…" + DEMO_API_KEY[-4:] in page  # shown masked
    assert workspace.encrypted_api_key not in page


def test_a_blank_key_keeps_the_current_one(admin_client):
    save_workspace(base_url="https://api.example.com", api_key=NEW_KEY)
    response = admin_client.post(
        CHANGE_URL, {"name": "Renamed", "base_url": "https://api.example.com", "api_key": ""}
    )
    assert response.status_code == 302
    workspace = Workspace.objects.get()
    assert workspace.name == "Renamed"
    assert workspace.api_key == NEW_KEY
    assert workspace.version == 1  # same connection, same cache namespace


@pytest.mark.parametrize(
    ("base_url", "api_key", "message"),
    [
        ("https://api.example.com", "pk_live_" + "x" * 56, "starts with “sk-workspace_”"),
        ("https://api.example.com", "sk-workspace_ abc" + "x" * 47, "spaces or invisible"),
        ("http://api.example.com", NEW_KEY, "must start with https://"),
        ("ftp://api.example.com", NEW_KEY, "must start with https://"),
        ("https://user:pw@api.example.com", NEW_KEY, "user name and password"),
        ("https://api.example.com/?key=1", NEW_KEY, "no query string"),
        ("https://api.example.com/api/v1", NEW_KEY, "Leave /api/v1 out"),
        ("not a url", NEW_KEY, "must start with https://"),
        ("https://exa mple.com", NEW_KEY, "Enter a valid URL"),
    ],
)
def test_bad_keys_and_urls_are_refused_with_a_clear_message(
    admin_client, base_url, api_key, message
):
    response = admin_client.post(
        "/admin/leads/workspace/add/", {"name": "W", "base_url": base_url, "api_key": api_key}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert message in html
    assert api_key not in html  # a refused key is not echoed back either
    assert not Workspace.objects.exists()


def test_http_to_localhost_needs_debug_or_the_setting(admin_client, settings):
    settings.POLLYBOT_ALLOW_HTTP_LOCALHOST = False
    data = {"name": "W", "base_url": "http://127.0.0.1:8765", "api_key": NEW_KEY}
    response = admin_client.post("/admin/leads/workspace/add/", data)
    assert "must start with https://" in response.content.decode()
    settings.DEBUG = True
    response = admin_client.post("/admin/leads/workspace/add/", data)
    assert response.status_code == 302


def test_a_path_prefix_is_allowed(admin_client):
    response = admin_client.post(
        "/admin/leads/workspace/add/",
        {"name": "W", "base_url": "https://example.com/pollybot", "api_key": NEW_KEY},
    )
    assert response.status_code == 302
    assert Workspace.objects.get().base_url == "https://example.com/pollybot"


def test_an_odd_length_key_is_saved_with_a_warning(admin_client):
    response = admin_client.post(
        "/admin/leads/workspace/add/",
        {"name": "W", "base_url": "https://api.example.com", "api_key": "sk-workspace_short"},
        follow=True,
    )
    assert "The key has 18 characters" in response.content.decode()
    assert Workspace.objects.get().api_key == "sk-workspace_short"


def test_the_list_goes_straight_to_the_one_workspace(admin_client):
    assert admin_client.get("/admin/leads/workspace/")["Location"].endswith("/add/")
    save_workspace(base_url="https://api.example.com", api_key=NEW_KEY)
    assert admin_client.get("/admin/leads/workspace/")["Location"] == CHANGE_URL
    assert admin_client.get("/admin/leads/workspace/add/").status_code == 403


def test_history_records_the_change_without_the_key(admin_client):
    save_workspace(base_url="https://api.example.com", api_key=NEW_KEY)
    admin_client.post(
        CHANGE_URL, {"name": "W", "base_url": "https://api.example.com", "api_key": DEMO_API_KEY}
    )
    entry = LogEntry.objects.get()
    assert entry.user.username == "root"
    assert "API key" in entry.get_change_message()
    assert DEMO_API_KEY not in entry.change_message
    history = admin_client.get("/admin/leads/workspace/1/history/").content.decode()
    assert "Changed" in history
    assert "API key" in history
    assert DEMO_API_KEY not in history


# --- permissions ------------------------------------------------------------------


def test_sales_staff_have_no_access_to_the_workspace(client):
    save_workspace(base_url="https://api.example.com", api_key=NEW_KEY)
    sales = get_user_model().objects.create_user("sam", password="pw-123456789", is_staff=True)
    client.force_login(sales)
    for url in ["/admin/leads/workspace/", CHANGE_URL, "/admin/leads/workspace/1/history/"]:
        assert client.get(url).status_code == 403, url
    assert client.post("/admin/leads/workspace/1/test-connection/").status_code == 403
    assert "Workspace" not in client.get("/admin/").content.decode()


# --- test connection ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("good", "Connected to PollyBot. 999 of 1,000 calls left this hour."),
        ("refused", "Key refused"),
        ("unreachable", "Not reachable"),
        ("html", "Unexpected answer from"),
    ],
)
def test_test_connection_button(admin_client, sandbox, case, expected):
    key = DEMO_API_KEY if case != "refused" else NEW_KEY
    base_url = sandbox.base_url if case != "unreachable" else "http://127.0.0.1:9"
    save_workspace(base_url=base_url, api_key=key)
    if case == "html":
        sandbox.app.inject(status=200, body=b"<html>proxy</html>")
    response = admin_client.post("/admin/leads/workspace/1/test-connection/", follow=True)
    assert response.redirect_chain[-1][0] == CHANGE_URL
    html = response.content.decode()
    assert expected in html
    assert key not in html
    if case != "unreachable":
        (call,) = sandbox.app.requests
        assert call.path == "/api/v1/leads"
        assert call.query == "page=1&limit=1"


def test_test_connection_needs_a_post(admin_client):
    save_workspace(base_url="https://api.example.com", api_key=NEW_KEY)
    assert admin_client.get("/admin/leads/workspace/1/test-connection/").status_code == 405


@pytest.mark.parametrize("case", ["good", "refused", "unreachable"])
def test_pollybot_check_command(sandbox, capsys, case):
    key = DEMO_API_KEY if case != "refused" else NEW_KEY
    base_url = sandbox.base_url if case != "unreachable" else "http://127.0.0.1:9"
    save_workspace(base_url=base_url, api_key=key)
    if case == "good":
        call_command("pollybot", "check")
        assert "Connected to PollyBot" in capsys.readouterr().out
    else:
        with pytest.raises(CommandError) as info:
            call_command("pollybot", "check")
        assert info.value.returncode == 1
        assert key not in str(info.value)
    assert key not in capsys.readouterr().out


def test_pollybot_get_command_prints_the_lead_as_json(sandbox, capsys):
    call_command("pollybot", "get", SEED_LEAD["id"])
    out = capsys.readouterr().out
    assert json.loads(out) == SEED_LEAD
    assert DEMO_API_KEY not in out


@pytest.mark.parametrize("lead_id", ["lead_nonexistent123", "invalid-id"])
def test_pollybot_get_command_fails_with_the_error_message(sandbox, lead_id):
    with pytest.raises(CommandError) as info:
        call_command("pollybot", "get", lead_id)
    assert info.value.returncode == 1
    assert lead_id in str(info.value)
    assert DEMO_API_KEY not in str(info.value)


# --- precedence and rotation ----------------------------------------------------------


def test_a_saved_workspace_wins_over_the_environment(sandbox, settings, sales_client):
    settings.POLLYBOT_BASE_URL = "http://127.0.0.1:9"  # the environment points nowhere
    settings.POLLYBOT_API_KEY = NEW_KEY
    save_workspace(base_url=sandbox.base_url, api_key=DEMO_API_KEY)
    assert sales_client.get(SEED_URL).status_code == 200
    assert sandbox.app.requests[-1].authorization == f"Bearer {DEMO_API_KEY}"


def test_after_a_key_change_the_next_page_view_uses_the_new_key(sandbox, admin_client):
    save_workspace(base_url=sandbox.base_url, api_key=DEMO_API_KEY)
    assert "John Doe" in admin_client.get(SEED_URL).content.decode()
    version = Workspace.objects.get().version

    # The key is rotated in PollyBot, and the lead changes there meanwhile.
    sandbox.app.api_key = NEW_KEY
    sandbox.app.set_leads([dict(SEED_LEAD, name="Johnny Doe")])
    admin_client.post(CHANGE_URL, {"name": "W", "base_url": sandbox.base_url, "api_key": NEW_KEY})
    assert Workspace.objects.get().version == version + 1

    # The very next view uses the new key, and nothing cached under the old one is shown.
    html = admin_client.get(SEED_URL).content.decode()
    assert "Johnny Doe" in html
    assert sandbox.app.requests[-1].authorization == f"Bearer {NEW_KEY}"


def test_a_base_url_change_also_starts_a_new_version():
    workspace = save_workspace(base_url="https://a.example.com", api_key=NEW_KEY)
    workspace.base_url = "https://b.example.com"
    workspace.save()
    assert Workspace.objects.get().version == 2
    workspace.name = "Only the name"
    workspace.save()
    assert Workspace.objects.get().version == 2


def test_no_workspace_and_no_environment_is_not_configured(settings, sales_client):
    settings.POLLYBOT_BASE_URL = ""
    settings.POLLYBOT_API_KEY = ""
    assert sales_client.get(SEED_URL).status_code == 503


@pytest.mark.django_db(transaction=True)
def test_two_admins_saving_new_keys_at_once_get_two_versions():
    if db.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks (DATABASE_URL=postgres://…, set by .ci/run)")
    save_workspace(base_url="https://a.example.com", api_key=NEW_KEY)
    barrier = threading.Barrier(2)

    def slow_write(**kwargs: object) -> None:
        time.sleep(0.3)  # both saves are under way before either writes

    def save(key: str) -> None:
        try:
            workspace = Workspace.objects.get()
            workspace.set_api_key(key)
            barrier.wait()
            workspace.save()
        finally:
            connections.close_all()

    pre_save.connect(slow_write, sender=Workspace)
    try:
        threads = [
            threading.Thread(target=save, args=(NEW_KEY[:-4] + suffix,))
            for suffix in ("1111", "2222")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        pre_save.disconnect(slow_write, sender=Workspace)
    assert Workspace.objects.get().version == 3
