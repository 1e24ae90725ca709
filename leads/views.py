"""Thin views: read the request, call one service, pick a template and a status."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required, permission_required
from django.contrib.humanize.templatetags import humanize
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import get_language
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from leads import exports, pollybot, services, updates
from leads.forms import FollowUpDateForm, LeadListForm, LeadNoteForm, LeadStatusForm
from leads.lead import FollowUpKind, Lead
from leads.models import LeadChange

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
@require_safe  # GET and HEAD (load balancers probe with HEAD)
def lead_detail(request: HttpRequest, lead_id: str) -> HttpResponse:
    try:
        reads = services.lead_page_reads(lead_id=lead_id, user=request.user)
    except pollybot.PollyBotError as error:  # a malformed ID: before any call
        return error_response(request, error, lead_id=lead_id)
    with reads:
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
        return _lead_page(request, fetched, neighbours=neighbours)


def _lead_url(request: HttpRequest, lead_id: str) -> str:
    """The lead page's absolute link, for exports and the copy-link button."""
    return request.build_absolute_uri(reverse("leads:detail", kwargs={"lead_id": lead_id}))


def _download(body: str, *, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(body.encode(), content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@never_cache
@require_safe
def lead_vcard(request: HttpRequest, lead_id: str) -> HttpResponse:
    """The lead as a contact card (.vcf) for the phone's address book."""
    try:
        lead = services.get_lead(lead_id=lead_id).lead
    except pollybot.PollyBotError as error:
        return error_response(request, error, lead_id=lead_id)
    card = exports.lead_vcard(lead, lead_url=_lead_url(request, lead_id))
    return _download(card, content_type="text/vcard", filename=exports.vcard_filename(lead))


@never_cache
@require_safe
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
@require_safe
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
@require_safe
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


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    return redirect("leads:list")


@login_not_required
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for load balancers: no login, no database, no API call."""
    return HttpResponse("ok\n", content_type="text/plain; charset=utf-8")


# --- Acting on a lead from its page (issue 9) ---------------------------------------
# Three small POST forms (status, follow-up date, note), each CSRF-protected,
# each needing leads.change_lead, each answering with POST-redirect-GET. When
# the change cannot be made, the lead page comes back with the user's input
# kept and a clear message, with the status that fits: 400 (form errors),
# 409 (the lead changed upstream), or the error's own (502, 503, 504).

ActionForm = LeadStatusForm | FollowUpDateForm | LeadNoteForm
_ACTION_FORMS: dict[str, type[ActionForm]] = {
    LeadChange.Action.STATUS: LeadStatusForm,
    LeadChange.Action.FOLLOW_UP: FollowUpDateForm,
    LeadChange.Action.NOTE: LeadNoteForm,
}
# Each form's element IDs start with its own prefix: three forms, one page.
_AUTO_IDS: dict[str, str] = {
    LeadChange.Action.STATUS: "status_%s",
    LeadChange.Action.FOLLOW_UP: "followup_%s",
    LeadChange.Action.NOTE: "note_%s",
}

# What the user is told when the PUT (or the read before it) fails. Whether the
# change may have been applied matters: a PUT is never retried automatically.
_FAILURE_MESSAGES: dict[type[pollybot.PollyBotError], str] = {
    pollybot.NotConfigured: "The site isn’t connected to PollyBot, so nothing was saved.",
    pollybot.AuthenticationFailed: (
        "PollyBot refused the workspace’s key, so nothing was saved. "
        "Ask an admin to check the workspace connection."
    ),
    pollybot.RateLimited: (
        "The workspace’s PollyBot calls for this hour are used up, so nothing was saved."
    ),
    pollybot.UpstreamUnavailable: (
        "PollyBot is not answering, so the change was probably not saved. "
        "Your input is kept below: try again in a moment."
    ),
    pollybot.UpstreamProtocolError: (
        "PollyBot gave an unexpected answer: the change may not have been saved. "
        "Reload the page to check before trying again."
    ),
}
_TIMEOUT_MESSAGE = (
    "PollyBot did not answer in time: the change may or may not have been saved. "
    "Reload the page to check before trying again; your input is kept below."
)


def _day(value: date) -> str:
    return date_format(value, "D j M Y")


def lead_actions_context(
    request: HttpRequest,
    lead: Lead,
    *,
    bound: ActionForm | None = None,
    action: str = "",
    conflict: updates.LeadChanged | None = None,
    action_error: str = "",
    lead_changes: list[updates.ChangeLine] | None = None,
) -> dict[str, object]:
    """The page's "Update this lead" forms (for users who may change leads) and "Changed here"."""
    if lead_changes is None:
        lead_changes = updates.recent_changes(lead_id=lead.id)
    context: dict[str, object] = {"lead_changes": lead_changes}
    if not request.user.has_perm(updates.CHANGE_LEAD_PERMISSION):
        return context
    version = updates.version_of(lead)
    follow_up_date = lead.follow_up.date
    initial: dict[str, dict[str, object]] = {
        LeadChange.Action.STATUS: {
            "status": lead.status.value.strip().lower() if lead.status.known else "",
            "follow_up_date": follow_up_date,
            "updated_at": version,
        },
        LeadChange.Action.FOLLOW_UP: {"follow_up_date": follow_up_date, "updated_at": version},
        LeadChange.Action.NOTE: {"updated_at": version},
    }
    forms = {
        str(name): form_class(initial=initial[name], auto_id=_AUTO_IDS[name])
        for name, form_class in _ACTION_FORMS.items()
    }
    if bound is not None:
        forms[action] = bound
    context.update(
        {
            "action_forms": forms,
            "action": action,
            "conflict": conflict,
            "action_error": action_error,
        }
    )
    return context


def _activity_moments(lead: Lead) -> list[tuple[str, datetime]]:
    """The Activity card's moments that parsed: (name, when)."""
    return [
        (name, moment.value)
        for name, moment in (
            ("last_interaction", lead.last_interaction),
            ("created_at", lead.created_at),
            ("updated_at", lead.updated_at),
        )
        if moment is not None and moment.value is not None
    ]


def _activity_ages(lead: Lead) -> dict[str, str]:
    """The Activity card's relative times ("3 days ago"): shown, and in its cache key."""
    return {name: naturaltime(value) for name, value in _activity_moments(lead)}


def _age_steps(lead: Lead) -> list[tuple[int, ...]]:
    """What decides Activity's relative times, for a key: cheaper than the texts themselves.

    humanize's naturaltime shows seconds under a minute, minutes under an hour,
    hours under a day, and from a day on two adjacent units of which the
    smallest is at most hours; its months are calendar months, which can also
    turn at midnight (a moment on the 31st is "1 month" old from the 1st of the
    month after next). So its text for a moment changes only when the moment's
    age crosses a whole number of that unit, or, from a day on, when the date
    changes: (age // unit, unit[, date]) changes whenever the text can
    (checked against Django's own naturaltime in tests/test_page_cache.py; to
    within the second for ages of a day or more, where naturaltime drops the
    moment's fraction of a second). The clock is the one naturaltime reads.
    """
    now = humanize.datetime.now(UTC)  # type: ignore[attr-defined]  # humanize's own import
    steps: list[tuple[int, ...]] = []
    for _name, value in _activity_moments(lead):
        age = abs((now - value).total_seconds())
        unit = 1 if age < 60 else 60 if age < 3600 else 3600
        step = int(age // unit) if now >= value else -int(age // unit) - 1
        day = now.astimezone(value.tzinfo).toordinal() if age >= 86400 else 0
        steps.append((step, unit, day))
    return steps


def _detail_page(
    request: HttpRequest,
    fetched: services.FetchedLead,
    *,
    neighbours: services.Neighbours | None = None,
    status: int = 200,
    shown: dict[str, Any] | None = None,
    **actions: Any,
) -> HttpResponse:
    """The lead page: after a GET, or again after an action with the forms' state.

    `shown`: parts of the context the caller has already worked out (_lead_page).
    """
    lead = fetched.lead
    context: dict[str, Any] = dict(shown or {})
    if "lead_url" not in context:
        context["lead_url"] = _lead_url(request, lead.id)
    if "activity_ages" not in context:
        context["activity_ages"] = _activity_ages(lead)
    lead_url = context["lead_url"]
    context.update(
        lead=lead,
        fetched=fetched,
        neighbours=neighbours,
        # Built only when the template renders them: a page whose lead card is
        # cached (the {% cache %} fragments of detail.html) does not need them.
        google_calendar_url=partial(exports.google_calendar_url, lead, lead_url=lead_url),
        outlook_calendar_url=partial(exports.outlook_calendar_url, lead, lead_url=lead_url),
    )
    context.update(
        lead_actions_context(request, lead, lead_changes=context.get("lead_changes"), **actions)
    )
    return render(request, "leads/detail.html", context, status=status)


# Stands for the CSRF token in a page kept as rendered (_lead_page): random per
# process, so no lead's data can hold it; each response gets its own token.
_CSRF_STAND_IN = f"csrf-stand-in-{secrets.token_hex(16)}"


def _lead_page(
    request: HttpRequest,
    fetched: services.FetchedLead,
    *,
    neighbours: services.Neighbours | None,
) -> HttpResponse:
    """The page after a GET, kept as rendered in this process while all it shows is the same.

    A salesperson opens the same lead again and again (from the CRM, Back,
    Reload); when nothing the page shows has changed, its HTML is the same but
    for the CSRF token, which each response gets afresh. The key is everything
    the page shows: the lead's copy (every field, when it was fetched, why it
    is stale), today's date, the time zone and language, the link, what
    Activity's relative times depend on (_age_steps), "Changed here", Previous
    and Next, and the viewer (name, staff, may they change leads). Pending
    messages are shown once, so such a page is never kept. The "pages" cache
    (each process's own memory; none with DEBUG) holds it.
    """
    lead = fetched.lead
    user: Any = request.user
    shown: dict[str, Any] = {
        "lead_url": _lead_url(request, lead.id),
        "lead_changes": updates.recent_changes(lead_id=lead.id),
    }
    if len(messages.get_messages(request)):
        return _detail_page(request, fetched, neighbours=neighbours, shown=shown)
    inputs = (
        lead.fingerprint,
        fetched.fetched_at,
        fetched.stale_reason,
        timezone.localdate(),
        timezone.get_current_timezone_name(),
        get_language(),
        shown["lead_url"],
        _age_steps(lead),
        shown["lead_changes"],
        neighbours,
        user.pk,
        user.get_username(),
        user.is_staff,
        user.has_perm(updates.CHANGE_LEAD_PERMISSION),
    )
    key = "lead-page:" + hashlib.blake2b(repr(inputs).encode(), digest_size=20).hexdigest()
    pages = caches["pages"]
    body = pages.get(key)
    if body is None:
        shown["csrf_token"] = _CSRF_STAND_IN
        page = _detail_page(request, fetched, neighbours=neighbours, shown=shown)
        body = page.content.decode()
        pages.set(key, body)
    return HttpResponse(body.replace(_CSRF_STAND_IN, get_token(request)))


def _failure(
    request: HttpRequest,
    error: pollybot.PollyBotError,
    fetched: services.FetchedLead | None,
    *,
    form: ActionForm,
    action: str,
) -> HttpResponse:
    """The page with the user's input and what went wrong; the error page if no copy exists."""
    if fetched is None or isinstance(error, pollybot.InvalidLeadId | pollybot.LeadNotFound):
        return error_response(request, error, lead_id=fetched.lead.id if fetched else "")
    _template, status = next(
        (page for cls, page in ERROR_PAGES.items() if isinstance(error, cls)),
        ("", 502),
    )
    message = next(
        (text for cls, text in _FAILURE_MESSAGES.items() if isinstance(error, cls)),
        _FAILURE_MESSAGES[pollybot.UpstreamProtocolError],
    )
    if isinstance(error, pollybot.UpstreamUnavailable) and error.timeout:
        status, message = 504, _TIMEOUT_MESSAGE
    retry_after = None
    if isinstance(error, pollybot.RateLimited):
        retry_after = error.retry_after if error.retry_after and error.retry_after > 0 else 60
        retry_at = timezone.localtime() + timedelta(seconds=retry_after)
        message += f" Try again at {retry_at:%H:%M}."
    logger.warning("lead change failed: %r", error)
    response = _detail_page(
        request, fetched, status=status, bound=form, action=action, action_error=message
    )
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def _page_copy(lead_id: str) -> services.FetchedLead | None:
    """The lead for a page shown again (cached, or stale): None when there is none."""
    try:
        return services.get_lead(lead_id=lead_id)
    except pollybot.PollyBotError as error:
        logger.info("no copy of %s to show the form again: %r", lead_id, error)
        return None


def _act(
    request: HttpRequest,
    lead_id: str,
    *,
    action: str,
    apply: Callable[[Any], updates.Updated],
    success: Callable[[Any, updates.Updated], str],
) -> HttpResponse:
    """Validate the form, apply the change, then redirect (PRG) or show the page again."""
    form = _ACTION_FORMS[action](request.POST, auto_id=_AUTO_IDS[action])
    if not form.is_valid():
        try:
            fetched = services.get_lead(lead_id=lead_id)
        except pollybot.PollyBotError as error:  # a bad ID, a lead gone, PollyBot down
            return error_response(request, error, lead_id=lead_id)
        return _detail_page(request, fetched, status=400, bound=form, action=action)
    data = form.cleaned_data
    try:
        updated = apply(data)
    except updates.LeadChanged as conflict:
        # The user's input, now aimed at the newer version: sent again only if they confirm.
        again = request.POST.copy()
        again["updated_at"] = conflict.version
        again["confirm_overwrite"] = "1"
        bound = _ACTION_FORMS[action](again, auto_id=_AUTO_IDS[action])
        bound.is_valid()
        return _detail_page(
            request, conflict.fetched, status=409, bound=bound, action=action, conflict=conflict
        )
    except updates.CannotApply as refusal:
        return _detail_page(
            request,
            refusal.fetched,
            status=409,
            bound=form,
            action=action,
            action_error=refusal.message,
        )
    except updates.UpdateFailed as failure:
        return _failure(request, failure.error, failure.fetched, form=form, action=action)
    except pollybot.PollyBotError as error:
        return _failure(request, error, _page_copy(lead_id), form=form, action=action)
    if updated.sent:
        messages.success(request, success(data, updated))
    else:
        messages.info(request, "PollyBot already had that: nothing was changed.")
    follow_up = updated.lead.follow_up
    date_changed = updated.change is not None and updates.FOLLOW_UP_PATH in updated.change.fields
    if date_changed and follow_up.kind is FollowUpKind.OVERDUE and follow_up.date is not None:
        # Allowed (a call logged late), but worth a second look.
        messages.warning(
            request,
            f"The follow-up date {_day(follow_up.date)} is in the past: the lead shows as overdue.",
        )
    return redirect("leads:detail", lead_id=lead_id)


@never_cache
@require_POST
@permission_required(updates.CHANGE_LEAD_PERMISSION, raise_exception=True)
def lead_set_status(request: HttpRequest, lead_id: str) -> HttpResponse:
    def apply(data: dict[str, Any]) -> updates.Updated:
        return updates.set_status(
            user=request.user,
            lead_id=lead_id,
            status=data["status"],
            follow_up_date=data.get("follow_up_date") if data["status"] == "follow_up" else None,
            seen_version=data["updated_at"],
        )

    def success(data: dict[str, Any], updated: updates.Updated) -> str:
        text = f"Status changed to {updated.lead.status.label}"
        if data["status"] == "follow_up" and updated.lead.follow_up.date is not None:
            text += f", follow-up on {_day(updated.lead.follow_up.date)}"
        return text + "."

    return _act(request, lead_id, action=LeadChange.Action.STATUS, apply=apply, success=success)


@never_cache
@require_POST
@permission_required(updates.CHANGE_LEAD_PERMISSION, raise_exception=True)
def lead_set_follow_up(request: HttpRequest, lead_id: str) -> HttpResponse:
    def apply(data: dict[str, Any]) -> updates.Updated:
        return updates.set_follow_up(
            user=request.user,
            lead_id=lead_id,
            follow_up_date=None if data.get("clear") else data["follow_up_date"],
            seen_version=data["updated_at"],
        )

    def success(data: dict[str, Any], updated: updates.Updated) -> str:
        chosen = updated.lead.follow_up.date
        if data.get("clear") or chosen is None:
            return "Follow-up date cleared."
        return f"Follow-up date set to {_day(chosen)}."

    return _act(request, lead_id, action=LeadChange.Action.FOLLOW_UP, apply=apply, success=success)


@never_cache
@require_POST
@permission_required(updates.CHANGE_LEAD_PERMISSION, raise_exception=True)
def lead_add_note(request: HttpRequest, lead_id: str) -> HttpResponse:
    def apply(data: dict[str, Any]) -> updates.Updated:
        return updates.add_note(
            user=request.user, lead_id=lead_id, text=data["note"], seen_version=data["updated_at"]
        )

    def success(data: dict[str, Any], updated: updates.Updated) -> str:
        return "Note added."

    return _act(request, lead_id, action=LeadChange.Action.NOTE, apply=apply, success=success)
