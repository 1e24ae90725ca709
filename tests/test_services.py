"""leads.services: what views call, against the sandbox over real HTTP."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from leads import pollybot, services
from sandbox.data import SEED_LEAD

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lead_1234567890abcdef", "lead_1234567890abcdef"),
        ("  lead_abc123\n", "lead_abc123"),
        ("https://leads.example.com/leads/lead_abc123/", "lead_abc123"),
        ("https://leads.example.com/leads/lead_abc123/?from=email#top", "lead_abc123"),
        ("Lead lead_abc123 (John Doe)", "lead_abc123"),
        ("invalid-id", None),
        ("lead_", None),
        ("mylead_abc123", None),
        ("lead_abc-123", None),
        ("john@example.com", None),
        ("", None),
    ],
)
def test_find_lead_id(text, expected):
    assert services.find_lead_id(text) == expected


def test_get_lead_returns_a_display_ready_lead(sandbox):
    fetched = services.get_lead(lead_id=SEED_LEAD["id"])
    assert fetched.lead.name == "John Doe"
    assert fetched.lead.company == "Tech Corp"
    assert abs(timezone.now() - fetched.fetched_at) < datetime.timedelta(seconds=5)


def test_get_lead_validates_before_any_call(sandbox):
    with pytest.raises(pollybot.InvalidLeadId):
        services.get_lead(lead_id="lead_abc-123")
    assert sandbox.app.requests == []


def test_not_configured_without_url_or_key(settings):
    settings.POLLYBOT_BASE_URL = ""
    settings.POLLYBOT_API_KEY = ""
    with pytest.raises(pollybot.NotConfigured):
        services.get_lead(lead_id="lead_abc123")


def test_one_pooled_client_per_connection(sandbox, settings):
    first = services.get_client(services.get_connection())
    assert services.get_client(services.get_connection()) is first
    settings.POLLYBOT_API_KEY = "sk-workspace_" + "n" * 51
    second = services.get_client(services.get_connection())
    assert second is not first
    with pytest.raises(pollybot.AuthenticationFailed):
        second.get_lead("lead_1234567890abcdef")
    # The sandbox saw the new key on the very next call.
    assert sandbox.app.requests[-1].authorization == "Bearer sk-workspace_" + "n" * 51


def test_connection_repr_hides_the_key():
    connection = services.Connection(
        base_url="https://x.example", api_key="sk-workspace_secret", namespace="env-x"
    )
    assert "secret" not in repr(connection)
