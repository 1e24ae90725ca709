"""Make the shared cache's copies of database rows out of date when the rows change.

Three things a lead page reads on every view are kept in the cache rather than
asked of the database each time (leads.cache.row_copy): the saved workspace
(leads.services), each lead's "Changed here" rows (leads.updates) and each
user's permissions (leads.auth). Each receiver here replaces the copies'
generation token twice: at once, so this process (and a test inside one
transaction) reads the change, and when the transaction commits, so a copy
read from the database while the change was under way is never used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save
from django.dispatch import receiver

from leads import auth, services, updates
from leads.models import LeadChange, Workspace

logger = logging.getLogger(__name__)


def _now_and_on_commit(changed: Callable[[], None]) -> None:
    changed()
    transaction.on_commit(changed)


@receiver(post_save, sender=Workspace)
@receiver(post_delete, sender=Workspace)
def workspace_written(sender: Any, **kwargs: Any) -> None:
    _now_and_on_commit(services.workspace_changed)


@receiver(post_save, sender=LeadChange)
@receiver(post_delete, sender=LeadChange)
def lead_change_written(sender: Any, instance: LeadChange, **kwargs: Any) -> None:
    lead_id = instance.lead_id
    _now_and_on_commit(lambda: updates.changes_changed(lead_id))


def permissions_changed(**kwargs: Any) -> None:
    if kwargs.get("action", "post_").startswith("pre_"):
        return  # m2m_changed: act after the rows changed, not before
    _now_and_on_commit(auth.permissions_changed)


def migrated(**kwargs: Any) -> None:
    """After migrations: data migrations (the Sales group's) write through historical
    models, which send no signal this module hears. A deploy may migrate before the
    cache is reachable: that must not fail the migration."""
    try:
        _now_and_on_commit(auth.permissions_changed)
        _now_and_on_commit(services.workspace_changed)
    except Exception:
        logger.warning("could not mark cached rows out of date after migrate", exc_info=True)


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
    post_migrate.connect(migrated, dispatch_uid=f"{uid}:migrate")
