"""Forms: the workspace connection as admins edit it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.core.validators import RegexValidator

from leads import encryption, pollybot
from leads.lead import KNOWN_STATUSES
from leads.models import Workspace
from leads.services import DEFAULT_PAGE_SIZE, LeadQuery

# The documented key shape (pollybot-api.md): the prefix plus 51 characters.
EXPECTED_KEY_LENGTH = 64
LOCAL_HOSTS = {"localhost", "127.0.0.1"}
# Page sizes offered on the list; PollyBot's maximum is 100.
PAGE_SIZES = (10, 20, 50, 100)


class WorkspaceForm(forms.ModelForm):
    """Write-only key: the stored key is never sent back; blank keeps it."""

    api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )

    class Meta:
        model = Workspace
        fields = ("name", "base_url")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.warnings: list[str] = []
        field = self.fields["api_key"]
        if self.instance.pk and self.instance.encrypted_api_key:
            field.help_text = (
                f"Current key: {self.current_key_masked()}. "
                "Leave blank to keep it; type a new key to replace it."
            )
        else:
            field.required = True
            field.help_text = "The workspace key, sk-workspace_… (64 characters)."

    def current_key_masked(self) -> str:
        try:
            return pollybot.mask_api_key(self.instance.api_key)
        except encryption.Undecryptable:
            return "(cannot be decrypted with SECRET_KEY: enter the key again)"

    def clean_api_key(self) -> str:
        key: str = self.cleaned_data["api_key"]
        if not key:
            return key
        if not key.startswith(pollybot.KEY_PREFIX):
            raise forms.ValidationError(
                "A PollyBot workspace key starts with “sk-workspace_”.", code="prefix"
            )
        if any(ch.isspace() or not ch.isprintable() for ch in key):
            raise forms.ValidationError(
                "The key contains spaces or invisible characters: paste it again.",
                code="characters",
            )
        if len(key) != EXPECTED_KEY_LENGTH:
            self.warnings.append(
                f"The key has {len(key)} characters; PollyBot keys usually have "
                f"{EXPECTED_KEY_LENGTH}. Use “Test connection” to check it."
            )
        return key

    def clean_base_url(self) -> str:
        url: str = self.cleaned_data["base_url"].strip()
        parts = urlsplit(url)
        if parts.username or parts.password:
            raise forms.ValidationError(
                "Leave the user name and password out of the URL: the API key is the login.",
                code="userinfo",
            )
        if parts.query or parts.fragment:
            raise forms.ValidationError(
                "The base URL takes no query string or fragment.", code="query"
            )
        host = (parts.hostname or "").lower()
        if parts.scheme == "http":
            if host not in LOCAL_HOSTS or not (
                settings.DEBUG or settings.POLLYBOT_ALLOW_HTTP_LOCALHOST
            ):
                raise forms.ValidationError(
                    "The base URL must start with https:// (plain http is only allowed to "
                    "localhost in development).",
                    code="scheme",
                )
        elif parts.scheme != "https":
            raise forms.ValidationError("The base URL must start with https://.", code="scheme")
        if parts.path.rstrip("/").endswith("/api/v1"):
            raise forms.ValidationError(
                "Leave /api/v1 out: the site adds it (e.g. https://your-domain.com).",
                code="api-path",
            )
        return url.rstrip("/")

    def save(self, commit: bool = True) -> Workspace:
        workspace: Workspace = super().save(commit=False)
        key = self.cleaned_data.get("api_key")
        if key:
            workspace.set_api_key(key)
        if commit:
            workspace.save()
        return workspace


class LeadListForm(forms.Form):
    """The list's search, filters and paging, read from the query string.

    Unknown values are refused here, with a message, and never sent upstream.
    A page size above PollyBot's maximum (100) is refused, not clamped, so the
    page never silently shows something other than what the link asked for.
    """

    q = forms.CharField(label="Search name or email", required=False, max_length=200)
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[("", "Any status"), *KNOWN_STATUSES.items()],
        error_messages={"invalid_choice": "“%(value)s” is not a lead status."},
    )
    source = forms.CharField(
        label="Source",
        required=False,
        max_length=50,
        validators=[
            RegexValidator(
                r"^[A-Za-z0-9_.\- ]*$",
                "A source is a single word such as website or chatbot.",
            )
        ],
    )
    page = forms.IntegerField(
        label="Page",
        required=False,
        min_value=1,
        max_value=100_000,
        error_messages={"invalid": "The page must be a number."},
    )
    limit = forms.TypedChoiceField(
        label="Leads per page",
        required=False,
        coerce=int,
        choices=[(str(n), str(n)) for n in PAGE_SIZES],
        error_messages={"invalid_choice": "Show 10, 20, 50 or 100 leads per page (at most 100)."},
    )

    def to_query(self) -> LeadQuery:
        data = self.cleaned_data
        return LeadQuery(
            search=data.get("q") or "",
            status=data.get("status") or "",
            source=(data.get("source") or "").strip(),
            page=data.get("page") or 1,
            limit=data.get("limit") or DEFAULT_PAGE_SIZE,
        )


# --- Acting on a lead from its page (issue 9) ---------------------------------------

# A note is a few sentences typed on a phone; the cap keeps one entry from
# swamping the notes everyone reads (and the PUT body small).
MAX_NOTE_CHARS = 2000
# updatedAt is an ISO timestamp (~24 characters); anything longer is not one.
MAX_VERSION_CHARS = 100


class _DateInput(forms.DateInput):
    """The browser's date picker; its value is always ISO (YYYY-MM-DD)."""

    input_type = "date"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%d")


class LeadActionForm(forms.Form):
    """What every action form carries: the version of the lead the user saw.

    `updated_at` is the lead's `updatedAt` when the page was built: the change
    is only sent if PollyBot still has that version. `confirm_overwrite` is set
    on the form shown again after a conflict (with the newer `updated_at`).
    """

    updated_at = forms.CharField(
        widget=forms.HiddenInput, required=False, max_length=MAX_VERSION_CHARS, strip=False
    )
    confirm_overwrite = forms.BooleanField(widget=forms.HiddenInput, required=False)


class LeadStatusForm(LeadActionForm):
    status = forms.ChoiceField(
        label="Status",
        choices=list(KNOWN_STATUSES.items()),
        error_messages={"invalid_choice": "Choose one of the six statuses."},
    )
    follow_up_date = forms.DateField(
        label="Follow-up date",
        required=False,
        widget=_DateInput(),
        help_text="Needed for Follow-up: the date is saved with the status, in one change.",
        error_messages={"invalid": "Enter a date, e.g. 2026-12-01."},
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("status") == "follow_up" and not data.get("follow_up_date"):
            self.add_error("follow_up_date", "Choose the follow-up date for the Follow-up status.")
        return data


class FollowUpDateForm(LeadActionForm):
    follow_up_date = forms.DateField(
        label="Follow-up date",
        required=False,
        widget=_DateInput(),
        error_messages={"invalid": "Enter a date, e.g. 2026-12-01."},
    )
    # Sent by the "Clear follow-up date" button: PollyBot is sent null.
    clear = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (
            not data.get("clear")
            and not data.get("follow_up_date")
            and "follow_up_date" not in self.errors
        ):
            self.add_error("follow_up_date", "Choose a date, or use “Clear follow-up date”.")
        return data


class LeadNoteForm(LeadActionForm):
    note = forms.CharField(
        label="Add a note",
        max_length=MAX_NOTE_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Added after the current notes, dated and signed with your name.",
        error_messages={"required": "Write the note first."},
    )
