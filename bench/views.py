"""The benchmark's two comparison views (issue 8), served by the product's own stack.

Both are behind the product's middleware, LoginRequiredMiddleware included: they
are reached only through bench/settings.py, never from the product's URLs.

- `floor`: what any page of this site costs at least: the same HTML bytes as
  the seed lead's page, with no I/O and no template.
- `seed_approach`: the lead page as the seed's Python example would build it: a
  plain `requests.get` per view (no Session, so a new connection each time, and
  no cache), then the product's `Lead` and template.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from leads.lead import Lead
from leads.services import FetchedLead

# The file holding the seed lead's page as the site served it once (bench/run.py
# writes it before any floor view is requested).
FLOOR_HTML_ENV = "BENCH_FLOOR_HTML"
# The seed's example sets no timeout; one here only keeps a broken run from
# hanging a worker. It is far above any answer the benchmark waits for.
SEED_TIMEOUT_SECONDS = 30

_floor_bytes: bytes | None = None
_floor_lock = threading.Lock()


def _floor_html() -> bytes:
    """The captured page, read from disk on a worker's first floor view only."""
    global _floor_bytes
    if _floor_bytes is None:
        with _floor_lock:
            if _floor_bytes is None:
                _floor_bytes = Path(os.environ[FLOOR_HTML_ENV]).read_bytes()
    return _floor_bytes


@require_GET
def floor(request: HttpRequest) -> HttpResponse:
    return HttpResponse(_floor_html(), content_type="text/html; charset=utf-8")


def _seed_get_lead(api_key: str, lead_id: str) -> dict[str, Any]:
    """The seed's `get_lead` (seed/get-lead.txt), with the base URL from settings.

    Its `print` lines are left out: they only echo the lead to a console.
    """
    url = f"{settings.POLLYBOT_BASE_URL}/api/v1/leads/{lead_id}"
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Content-Type": "application/json",
    }
    response = requests.get(url, headers=headers, timeout=SEED_TIMEOUT_SECONDS)
    if response.status_code == 404:
        raise ValueError(f"Lead with ID '{lead_id}' not found")
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    data: dict[str, Any] = result["data"]
    return data


@require_GET
def seed_approach(request: HttpRequest, lead_id: str) -> HttpResponse:
    data = _seed_get_lead(settings.POLLYBOT_API_KEY, lead_id)
    lead = Lead.from_api(data, today=timezone.localdate())
    # The product view's context shape: the template reads `fetched` for its
    # "fetched at" line; a copy fetched this instant is fresh.
    fetched = FetchedLead(lead=lead, fetched_at=timezone.now())
    return render(request, "leads/detail.html", {"lead": lead, "fetched": fetched})
