"""How long a cached lead is trusted: a tenth of the time it had gone unchanged (RFC 9111 4.2.2)."""

from __future__ import annotations

import datetime
import time

import pytest
from django.utils import timezone

from leads import freshness
from leads.freshness import Resource
from sandbox.data import SEED_LEAD

pytestmark = pytest.mark.django_db

SEED_URL = f"/leads/{SEED_LEAD['id']}/"
LEAD_API_PATH = f"/api/v1/leads/{SEED_LEAD['id']}"


def _resource(updated_at: float | None, *, fresh_for: int = 300, max_fresh_for: int = 3600):
    return Resource(
        name="lead_x",
        fetch=lambda client: {},
        fresh_for=fresh_for,
        last_modified=lambda data: updated_at,
        max_fresh_for=max_fresh_for,
    )


@pytest.mark.parametrize(
    ("unchanged_for", "window"),
    [
        (60, 300),  # changed a minute ago: the shortest window
        (3000, 300),  # a tenth of 50 minutes is under the shortest window
        (10_000, 1000),  # a tenth of the time it had gone unchanged
        (36_000, 3600),  # ten hours: the longest window
        (10**8, 3600),  # years: still the longest window
    ],
)
def test_a_copy_is_fresh_for_a_tenth_of_the_time_the_lead_had_gone_unchanged(unchanged_for, window):
    fetched = 1_800_000_000.0
    assert _resource(fetched - unchanged_for).fresh_for_copy(({}, fetched)) == window


def test_an_unknown_or_future_updated_at_gets_the_shortest_window():
    fetched = 1_800_000_000.0
    assert _resource(None).fresh_for_copy(({}, fetched)) == 300
    assert _resource(fetched + 600).fresh_for_copy(({}, fetched)) == 300


def test_a_zero_ttl_is_never_fresh_and_a_short_maximum_is_a_flat_window():
    fetched = 1_800_000_000.0
    assert _resource(fetched - 10**6, fresh_for=0).fresh_for_copy(({}, fetched)) == 0
    assert _resource(fetched - 10**6, max_fresh_for=60).fresh_for_copy(({}, fetched)) == 300


def test_a_lead_unchanged_for_long_stays_fresh_past_the_shortest_window(
    sales_client, sandbox, settings
):
    settings.POLLYBOT_CACHE_TTL = 1
    settings.POLLYBOT_CACHE_MAX_TTL = 3600
    recent = (timezone.now() - datetime.timedelta(seconds=2)).isoformat()
    sandbox.app.set_leads(
        [
            SEED_LEAD,  # updatedAt in January 2024: unchanged for years
            dict(SEED_LEAD, id="lead_recent1", updatedAt=recent.replace("+00:00", "Z")),
        ]
    )
    sales_client.get(SEED_URL)
    sales_client.get("/leads/lead_recent1/")
    time.sleep(1.2)  # past the shortest window
    sales_client.get(SEED_URL)
    sales_client.get("/leads/lead_recent1/")

    gets = [r.path for r in sandbox.app.requests if r.method == "GET"]
    assert gets.count(LEAD_API_PATH) == 1  # still fresh: no call
    assert gets.count("/api/v1/leads/lead_recent1") == 2  # changed seconds ago: asked again


def test_the_copy_is_kept_at_least_as_long_as_it_can_be_fresh(settings):
    settings.POLLYBOT_STALE_TTL = 60
    settings.POLLYBOT_CACHE_TTL = 300
    settings.POLLYBOT_CACHE_MAX_TTL = 7200
    assert freshness._stale_ttl() == 7200
