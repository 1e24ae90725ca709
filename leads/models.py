"""What must persist: the workspace connection kept by admins, and changes made to leads here."""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models, router, transaction
from django.utils import timezone

from leads import encryption


class WorkspaceQuerySet(models.QuerySet["Workspace"]):
    def active(self) -> Workspace | None:
        return self.filter(pk=Workspace.SINGLETON_ID).first()


class Workspace(models.Model):
    """The one PollyBot workspace this site reads leads from.

    A saved workspace wins over the POLLYBOT_BASE_URL / POLLYBOT_API_KEY
    environment variables. The API key is stored encrypted (leads.encryption);
    `version` grows whenever the base URL or the key changes, and cache keys
    carry it, so nothing fetched with the old connection is shown afterwards.
    """

    SINGLETON_ID = 1

    name = models.CharField("display name", max_length=100, default="PollyBot workspace")
    # A CharField with a URL validator rather than URLField, whose form field
    # would guess a scheme for a bare host: the form insists on https itself.
    base_url = models.CharField(
        "base URL",
        max_length=500,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="The API's base URL without /api/v1, e.g. https://your-domain.com",
    )
    encrypted_api_key = models.TextField(editable=False)
    version = models.PositiveIntegerField(
        "connection version",
        default=1,
        editable=False,
        help_text=(
            "Grows when the base URL or the key changes; "
            "cached leads of older versions are never shown."
        ),
    )
    updated_at = models.DateTimeField("last saved", auto_now=True)

    objects: ClassVar[WorkspaceQuerySet] = WorkspaceQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        verbose_name = "workspace"
        verbose_name_plural = "workspace"

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.pk = self.SINGLETON_ID  # one workspace: saving always updates it
        using = kwargs.get("using") or router.db_for_write(Workspace, instance=self)
        # The version is read and bumped under the row's lock: two admins saving
        # at the same moment get two versions, never one (PostgreSQL; SQLite
        # has one writer at a time and ignores the lock).
        with transaction.atomic(using=using):
            previous = (
                Workspace.objects.using(using)
                .select_for_update()
                .filter(pk=self.pk)
                .values("base_url", "version")
                .first()
            )
            if previous is not None:
                changed = self._key_changed or previous["base_url"] != self.base_url
                self.version = previous["version"] + 1 if changed else previous["version"]
            self._key_changed = False
            super().save(*args, **kwargs)

    @property
    def api_key(self) -> str:
        """The plaintext key; encryption.Undecryptable if SECRET_KEY changed without a fallback."""
        return encryption.decrypt(self.encrypted_api_key)

    # Set when a new key is given: Fernet tokens differ on every encryption,
    # so the stored tokens cannot be compared to tell whether the key changed.
    _key_changed = False

    def set_api_key(self, api_key: str) -> None:
        self.encrypted_api_key = encryption.encrypt(api_key)
        self._key_changed = True


class LeadChange(models.Model):
    """One change made to a PollyBot lead from this site: who, when, which fields, before/after.

    The audit trail of issue 9 ("Changed here" on the lead page). `fields` holds
    dotted paths as sent in the PUT ("status", "metadata.follow_up_date",
    "metadata.notes"); `before` and `after` map each path to its value just
    before the PUT (from the fresh GET) and in PollyBot's answer.

    Its Meta also carries the site's one custom permission, `leads.change_lead`:
    who may change leads in PollyBot from the lead page (the "Sales" group has it).
    """

    class Action(models.TextChoices):
        STATUS = "status", "Status"
        FOLLOW_UP = "follow_up", "Follow-up date"
        NOTE = "note", "Note"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="lead_changes",
    )
    # Kept as written at the time: the record stays readable if the user is deleted or renamed.
    user_name = models.CharField("by", max_length=150)
    lead_id = models.CharField("lead ID", max_length=100, db_index=True)
    action = models.CharField(max_length=20, choices=Action.choices)
    fields = models.JSONField(default=list)
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    changed_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = "lead change"
        ordering = ("-changed_at", "-id")
        # An audit record is written by the site and never edited: only "view" is granted.
        default_permissions = ("view",)
        permissions = (("change_lead", "Can change leads in PollyBot"),)

    def __str__(self) -> str:
        return (
            f"{self.lead_id} {self.action} by {self.user_name} at {self.changed_at:%Y-%m-%d %H:%M}"
        )
