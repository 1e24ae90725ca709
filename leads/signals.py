"""Keep the shared cache's copies of database rows in step with the database.

Three things a lead page reads on every view are kept in the cache rather than
asked of the database each time: the saved workspace (leads.services), each
lead's "Changed here" rows (leads.updates) and each user's permissions
(leads.auth). Each receiver here acts twice: at once, so this process (and a
test inside one transaction) sees the change, and when the transaction commits,
so no reader that read the database mid-change can leave an old copy behind.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save
from django.dispatch import receiver

from leads import auth, services, updates
from leads.models import LeadChange, Workspace


@receiver(post_save, sender=Workspace)
def workspace_saved(sender: Any, instance: Workspace, **kwargs: Any) -> None:
    saved = services.SavedWorkspace.of(instance)
    services.forget_saved_workspace()
    transaction.on_commit(lambda: services.cache_saved_workspace(saved, replace=True))


@receiver(post_delete, sender=Workspace)
def workspace_deleted(sender: Any, **kwargs: Any) -> None:
    services.forget_saved_workspace()
    transaction.on_commit(lambda: services.cache_saved_workspace(None, replace=True))


@receiver(post_save, sender=LeadChange)
@receiver(post_delete, sender=LeadChange)
def lead_change_written(sender: Any, instance: LeadChange, **kwargs: Any) -> None:
    lead_id = instance.lead_id
    updates.forget_changes(lead_id)
    transaction.on_commit(lambda: updates.share_changes(lead_id))


def permissions_changed(**kwargs: Any) -> None:
    if kwargs.get("action", "post_").startswith("pre_"):
        return  # m2m_changed: act after the rows changed, not before
    auth.new_generation()
    transaction.on_commit(auth.new_generation)


def connect_permission_signals() -> None:
    """Every way Django's ORM changes who holds which permission (called from AppConfig.ready)."""
    user_model = get_user_model()
    uid = "leads.signals.permissions_changed"
    for through in (
        user_model.groups.through,
        user_model.user_permissions.through,
        Group.permissions.through,
    ):
        m2m_changed.connect(permissions_changed, sender=through, dispatch_uid=f"{uid}:{through}")
    for model in (Group, Permission):
        post_save.connect(permissions_changed, sender=model, dispatch_uid=f"{uid}:save:{model}")
        post_delete.connect(permissions_changed, sender=model, dispatch_uid=f"{uid}:del:{model}")
    # A deleted user's ID may be given to a new user (SQLite reuses the highest).
    post_delete.connect(permissions_changed, sender=user_model, dispatch_uid=f"{uid}:user")
    # Migrations (the Sales group's data migration) write through historical models.
    post_migrate.connect(permissions_changed, dispatch_uid=f"{uid}:migrate")
