"""The seed page's own Python example, run against the sandbox over HTTP.

`get_lead` below is copied from seed/get-lead.txt; only the URL's base changed (it
comes from the sandbox), the formatter normalised quotes and a trailing comma keeps
the headers dict laid out as on the page. If the sandbox answers
as the seed says, the seed's code works against it unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from sandbox.app import SandboxApp
from sandbox.data import DEMO_API_KEY, SEED_LEAD
from sandbox.server import serve

BASE_URL = ""  # set by the sandbox fixture below


def get_lead(api_key: str, lead_id: str) -> dict:
    """
    Retrieve a specific lead by ID.

    Args:
        api_key: Your API key
        lead_id: The lead's unique identifier

    Returns:
        dict: The lead data

    Raises:
        requests.exceptions.HTTPError: If lead not found or other HTTP error
    """
    url = f"{BASE_URL}/api/v1/leads/{lead_id}"
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Content-Type": "application/json",
    }

    try:
        # The seed's call has no timeout; kept verbatim (the product's client sets one).
        response = requests.get(url, headers=headers)  # noqa: S113

        if response.status_code == 404:
            raise ValueError(f"Lead with ID '{lead_id}' not found")

        response.raise_for_status()

        result = response.json()
        print(f"Retrieved lead: {result['data']['name']} ({result['data']['email']})")  # noqa: T201

        return result["data"]
    except requests.exceptions.RequestException as e:
        print(f"Error getting lead: {e}")  # noqa: T201
        raise


@pytest.fixture(scope="module", autouse=True)
def seed_sandbox(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[None]:
    with serve(SandboxApp()) as running:
        monkeypatch_module.setattr(f"{__name__}.BASE_URL", running.base_url)
        # The seed's example uses requests' defaults; keep a developer's proxy out of the way.
        monkeypatch_module.setenv("NO_PROXY", "127.0.0.1")
        yield


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_seed_example_returns_the_seed_lead(capsys: pytest.CaptureFixture[str]) -> None:
    assert get_lead(DEMO_API_KEY, "lead_1234567890abcdef") == SEED_LEAD
    assert capsys.readouterr().out == "Retrieved lead: John Doe (john.doe@example.com)\n"


def test_seed_example_raises_value_error_for_unknown_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(ValueError, match=r"^Lead with ID 'lead_nonexistent123' not found$"):
        get_lead(DEMO_API_KEY, "lead_nonexistent123")
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("api_key", "lead_id", "status"),
    [
        (DEMO_API_KEY, "invalid-id", 400),
        ("sk-workspace_your_api_key", "lead_1234567890abcdef", 401),
    ],
)
def test_seed_example_raises_http_error_otherwise(
    capsys: pytest.CaptureFixture[str], api_key: str, lead_id: str, status: int
) -> None:
    with pytest.raises(requests.HTTPError) as raised:
        get_lead(api_key, lead_id)
    assert raised.value.response.status_code == status
    assert capsys.readouterr().out.startswith(f"Error getting lead: {status} Client Error")
