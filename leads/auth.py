"""Each user's permissions, kept in the shared cache: a lead page asks no database for them.

Django's ModelBackend reads a user's permissions with two queries (their own
and their groups') the first time a request asks. The lead page asks on every
view (may this user change leads?), so this backend keeps each user's set in
the shared cache (leads.cache.row_copy), stamped with a generation token that
leads.signals replaces whenever a permission, a group's permissions or a
user's groups change: a permission taken away applies on the user's next
request, in every process. With a cache that is each process's own (local
memory), permissions are read from the database as Django does.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend

from leads.cache import row_copy, row_copy_keys, rows_changed

GENERATION_KEY = "leadsite:perms:generation"
# Bounds how long an entry of a deleted or idle user occupies the cache.
PERMISSIONS_TTL = 3600


def _entry_key(user_obj: Any) -> str:
    # A superuser holds every permission: a demoted one must not keep that set,
    # so the flag is part of the key.
    return f"leadsite:perms:user:{user_obj.pk}:{int(user_obj.is_superuser)}"


def permission_keys(user_obj: Any) -> list[str]:
    """The cache keys a permission check of this user reads (leads.cache.read_ahead)."""
    if not user_obj.is_active or user_obj.is_anonymous:
        return []
    return row_copy_keys(GENERATION_KEY, _entry_key(user_obj))


def permissions_changed() -> None:
    """Every cached permission set is out of date from now on."""
    rows_changed(GENERATION_KEY, PERMISSIONS_TTL)


class CachedPermissionsBackend(ModelBackend):
    """ModelBackend, with `get_all_permissions` answered from the shared cache when it can be."""

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            user_obj._perm_cache = set(
                row_copy(
                    generation_key=GENERATION_KEY,
                    entry_key=_entry_key(user_obj),
                    ttl=PERMISSIONS_TTL,
                    load=lambda: frozenset(self._from_database(user_obj)),
                )
            )
        permissions: set[str] = user_obj._perm_cache
        return permissions

    def _from_database(self, user_obj: Any) -> set[str]:
        return {
            *self.get_user_permissions(user_obj),
            *self.get_group_permissions(user_obj),
        }
