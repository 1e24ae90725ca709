"""The Django admin: the workspace connection (write-only key, test connection), and the
read-only record of changes made to leads from the site."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

from leads import services
from leads.forms import WorkspaceForm
from leads.models import LeadChange, Workspace


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    form = WorkspaceForm
    fields = ("name", "base_url", "api_key", "rate_budget", "version", "updated_at")
    readonly_fields = ("rate_budget", "version", "updated_at")
    change_form_template = "admin/leads/workspace/change_form.html"

    @admin.display(description="rate budget this hour")
    def rate_budget(self, obj: Workspace) -> str:
        # Shared by every instance through the cache, from PollyBot's X-RateLimit-* headers.
        return services.describe_budget() if obj.pk else "Shown once the workspace is saved."

    def has_add_permission(self, request: HttpRequest) -> bool:
        # One workspace: once it exists, it is edited, not added again.
        return super().has_add_permission(request) and not Workspace.objects.exists()

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # A list of one is a detour: go straight to the workspace (or to adding it).
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        workspace = Workspace.objects.active()
        if workspace is None:
            return redirect("admin:leads_workspace_add")
        return redirect("admin:leads_workspace_change", workspace.pk)

    def save_model(self, request: HttpRequest, obj: Workspace, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        for warning in form.warnings:
            self.message_user(request, warning, messages.WARNING)

    def get_urls(self) -> list[URLPattern]:
        test_connection = self.admin_site.admin_view(require_POST(self.test_connection_view))
        return [
            path(
                "<path:object_id>/test-connection/",
                test_connection,
                name="leads_workspace_test_connection",
            ),
            *super().get_urls(),
        ]

    def test_connection_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """A real call with the saved connection, and one message for its outcome."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        result = services.check_connection()
        self.message_user(
            request, result.message, messages.SUCCESS if result.ok else messages.ERROR
        )
        return HttpResponseRedirect(reverse("admin:leads_workspace_change", args=[object_id]))


@admin.register(LeadChange)
class LeadChangeAdmin(admin.ModelAdmin):
    """The audit trail: written by the site when a lead is changed, never edited by hand."""

    list_display = ("changed_at", "lead_id", "action", "user_name")
    list_filter = ("action",)
    search_fields = ("lead_id", "user_name")
    date_hierarchy = "changed_at"
    readonly_fields = (
        "changed_at",
        "lead_id",
        "action",
        "user",
        "user_name",
        "fields",
        "before",
        "after",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: LeadChange | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: LeadChange | None = None) -> bool:
        return False
