"""Shared fixtures: the stand-in PollyBot API over real HTTP, and users."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import caches
from django.core.management import call_command
from django.test import override_settings

from sandbox.app import SandboxApp
from sandbox.data import DEMO_API_KEY
from sandbox.server import RunningSandbox, serve


@pytest.fixture(scope="session", autouse=True)
def collected_static(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Pages use WhiteNoise's hashed static names, as in production: collect them once.

    Into a folder of this run's own (concurrent runs never share one), also
    handed to the app servers that tests start as subprocesses.
    """
    root = tmp_path_factory.mktemp("static")
    os.environ["STATIC_ROOT"] = str(root)
    with override_settings(STATIC_ROOT=root):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    """Every test starts with empty caches (local memory, or the real Redis in CI)."""
    for each in caches.all():
        each.clear()
    yield
    for each in caches.all():
        each.clear()


@pytest.fixture
def sandbox(settings) -> Iterator[RunningSandbox]:
    """A fresh sandbox on a free port, and the site pointed at it.

    Timeouts are cut short and backoff sleeps zeroed so error cases run fast.
    """
    with serve(SandboxApp()) as running:
        settings.POLLYBOT_BASE_URL = running.base_url
        settings.POLLYBOT_API_KEY = DEMO_API_KEY
        settings.POLLYBOT_CONNECT_TIMEOUT = 1.0
        settings.POLLYBOT_READ_TIMEOUT = 0.5
        settings.POLLYBOT_CALL_DEADLINE = 2.0
        settings.POLLYBOT_BACKOFF_FACTOR = 0.0
        yield running


@pytest.fixture
def sales_user(db):
    return get_user_model().objects.create_user(username="sam", password="correct-horse-42")


@pytest.fixture
def staff_user(db):
    return get_user_model().objects.create_user(
        username="ada", password="correct-horse-42", is_staff=True
    )


@pytest.fixture
def sales_client(client, sales_user):
    client.force_login(sales_user)
    return client


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def seller(sales_user):
    """Sam Seller, in the Sales group the data migration created."""
    sales_user.first_name, sales_user.last_name = "Sam", "Seller"
    sales_user.save()
    sales_user.groups.add(Group.objects.get(name="Sales"))
    return sales_user


@pytest.fixture
def seller_client(client, seller):
    client.force_login(seller)
    return client
