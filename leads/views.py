"""Thin views: read the request, call one service, pick a template and a status."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from leads import exports, pollybot, services
from leads.forms import LeadListForm

logger = logging.getLogger(__name__)

# Each error of the closed set has one page and one status (DESIGN.md).
ERROR_PAGES: dict[type[pollybot.PollyBotError], tuple[str, int]] = {
    pollybot.InvalidLeadId: ("leads/errors/invalid_id.html", 400),
    pollybot.LeadNotFound: ("leads/errors/not_found.html", 404),
    pollybot.NotConfigured: ("leads/errors/not_configured.html", 503),
    pollybot.AuthenticationFailed: ("leads/errors/auth_failed.html", 502),
    pollybot.RateLimited: ("leads/errors/rate_limited.html", 503),
    pollybot.UpstreamUnavailable: ("leads/errors/unavailable.html", 502),
    pollybot.UpstreamProtocolError: ("leads/errors/protocol_error.html", 502),
}


def error_response(
    request: HttpRequest, error: pollybot.PollyBotError, *, lead_id: str = ""
) -> HttpResponse:
    """The page for one error of the closed set, never the upstream's own body."""
    template, status = next(
        (page for cls, page in ERROR_PAGES.items() if isinstance(error, cls)),
        ("leads/errors/protocol_error.html", 502),
    )
    context: dict[str, object] = {
        "error": error,
        "lead_id": lead_id,
        "expected_format": pollybot.EXPECTED_LEAD_ID_FORMAT,
    }
    if isinstance(error, pollybot.LeadNotFound):
        context["recent"] = services.recent_leads(user=request.user)
    if isinstance(error, pollybot.UpstreamUnavailable) and error.timeout:
        status = 504
    retry_after = error.retry_after if isinstance(error, pollybot.RateLimited) else None
    if isinstance(error, pollybot.RateLimited):
        wait = retry_after if retry_after and retry_after > 0 else 60
        context["retry_at"] = timezone.localtime() + timedelta(seconds=wait)
        retry_after = wait
    logger.warning("lead page error: %r", error)
    response = render(request, template, context, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


@never_cache  # personal data: Cache-Control no-store, never kept by browsers or proxies
@require_GET
def lead_detail(request: HttpRequest, lead_id: str) -> HttpResponse:
    try:
        fetched = services.get_lead(lead_id=lead_id)
    except pollybot.PollyBotError as error:
        return error_response(request, error, lead_id=lead_id)
    services.record_view(user=request.user, lead=fetched.lead)
    # Opened from a page of the list: Previous and Next keep its filters and page.
    neighbours = None
    if request.GET.get("from") == "list":
        form = LeadListForm(request.GET)
        if form.is_valid():
            neighbours = services.neighbours(lead_id=lead_id, query=form.to_query())
    lead_url = _lead_url(request, lead_id)
    return render(
        request,
        "leads/detail.html",
        {
            "lead": fetched.lead,
            "fetched": fetched,
            "neighbours": neighbours,
            "lead_url": lead_url,
            "google_calendar_url": exports.google_calendar_url(fetched.lead, lead_url=lead_url),
            "outlook_calendar_url": exports.outlook_calendar_url(fetched.lead, lead_url=lead_url),
        },
    )


def _lead_url(request: HttpRequest, lead_id: str) -> str:
    """The lead page's absolute link, for exports and the copy-link button."""
    return request.build_absolute_uri(reverse("leads:detail", kwargs={"lead_id": lead_id}))


def _download(body: str, *, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(body.encode(), content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@never_cache
@require_GET
def lead_vcard(request: HttpRequest, lead_id: str) -> HttpResponse:
    """The lead as a contact card (.vcf) for the phone's address book."""
    try:
        lead = services.get_lead(lead_id=lead_id).lead
    except pollybot.PollyBotError as error:
        return error_response(request, error, lead_id=lead_id)
    card = exports.lead_vcard(lead, lead_url=_lead_url(request, lead_id))
    return _download(card, content_type="text/vcard", filename=exports.vcard_filename(lead))


@never_cache
@require_GET
def lead_calendar(request: HttpRequest, lead_id: str) -> HttpResponse:
    """The follow-up date as an all-day calendar event (.ics)."""
    try:
        lead = services.get_lead(lead_id=lead_id).lead
    except pollybot.PollyBotError as error:
        return error_response(request, error, lead_id=lead_id)
    event = exports.follow_up_calendar(
        lead, lead_url=_lead_url(request, lead_id), now=timezone.now()
    )
    if event is None:
        messages.info(request, "This lead has no follow-up date to add to a calendar.")
        return redirect("leads:detail", lead_id=lead_id)
    return _download(event, content_type="text/calendar", filename=exports.calendar_filename(lead))


@never_cache
@require_POST
def lead_refresh(request: HttpRequest, lead_id: str) -> HttpResponse:
    """The Refresh control: fetch now, at most once per lead every few seconds for everyone."""
    try:
        if services.allow_refresh(lead_id=lead_id):
            services.get_lead(lead_id=lead_id, refresh=True)
        else:
            messages.info(
                request,
                "This lead was refreshed from PollyBot moments ago: showing that copy.",
            )
    except pollybot.PollyBotError as error:
        return error_response(request, error, lead_id=lead_id)
    return redirect("leads:detail", lead_id=lead_id)


@never_cache
@require_GET
def lead_list(request: HttpRequest) -> HttpResponse:
    """The list: search, filters and paging from the query string, so it can be shared."""
    form = LeadListForm(request.GET)
    context: dict[str, object] = {
        "form": form,
        "recent": services.recent_leads(user=request.user),
    }
    if not form.is_valid():
        return render(request, "leads/list.html", context, status=400)
    try:
        context["page"] = services.list_leads(query=form.to_query())
    except pollybot.PollyBotError as error:
        return error_response(request, error)
    return render(request, "leads/list.html", context)


@never_cache
@require_GET
def lookup(request: HttpRequest) -> HttpResponse:
    """The lookup box: a lead ID, a pasted link or text holding one, else a search."""
    query = request.GET.get("q", "").strip()
    if not query:
        return redirect("leads:list")
    lead_id = services.find_lead_id(query)
    if lead_id is None and not services.looks_like_lead_id(query):
        # An email address or a name: the list, searched.
        return redirect(f"{reverse('leads:list')}?{urlencode({'q': query[:200]})}")
    try:
        lead_id = pollybot.validate_lead_id(lead_id or query)
    except pollybot.InvalidLeadId as error:
        return error_response(request, error, lead_id=query[:200])
    return redirect("leads:detail", lead_id=lead_id)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return redirect("leads:list")


@login_not_required
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for load balancers: no login, no database, no API call."""
    return HttpResponse("ok\n", content_type="text/plain; charset=utf-8")
