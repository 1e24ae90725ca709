"""Each user's permissions, kept in the shared cache: a lead page asks no database for them.

Django's ModelBackend reads a user's permissions with two queries (their own
and their groups') the first time a request asks. The lead page asks on every
view (may this user change leads?), so this backend keeps each user's set in
the cache, stamped with a *generation*: a token that leads.signals replaces
whenever a permission, a group's permissions or a user's groups change. An
entry stamped with an older generation is never used, so a permission taken
away applies on the user's next request, on every instance.

The generation is replaced when the change is made and again when its
transaction commits, so a set read from the database mid-change is stamped
with a generation that is already gone.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache

GENERATION_KEY = "leadsite:perms:generation"
# Only bounds how long an entry of a deleted or idle user occupies the cache.
PERMISSIONS_TTL = 3600


def _user_key(user_id: object) -> str:
    return f"leadsite:perms:user:{user_id}"


def new_generation() -> None:
    """Every cached permission set is out of date from now on."""
    cache.set(GENERATION_KEY, secrets.token_hex(8), None)


class CachedPermissionsBackend(ModelBackend):
    """ModelBackend, with `get_all_permissions` answered from the cache when it can be."""

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            user_obj._perm_cache = self._cached_permissions(user_obj)
        permissions: set[str] = user_obj._perm_cache
        return permissions

    def _cached_permissions(self, user_obj: Any) -> set[str]:
        key = _user_key(user_obj.pk)
        found = cache.get_many([GENERATION_KEY, key])
        generation = found.get(GENERATION_KEY)
        entry = found.get(key)
        if generation is None:
            # No generation yet (a fresh cache): start one; this answer is not kept.
            cache.add(GENERATION_KEY, secrets.token_hex(8), None)
            return self._from_database(user_obj)
        if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == generation:
            return set(entry[1])
        permissions = self._from_database(user_obj)
        # Stamped with the generation read *before* the database: if a change
        # landed in between, the stamp is already old and the entry is ignored.
        cache.set(key, (generation, frozenset(permissions)), PERMISSIONS_TTL)
        return permissions

    def _from_database(self, user_obj: Any) -> set[str]:
        return {
            *self.get_user_permissions(user_obj),
            *self.get_group_permissions(user_obj),
        }
