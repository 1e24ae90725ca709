"""Django's Redis cache backend, with one Redis client per connection pool.

Django's own `RedisCacheClient.get_client` builds a new `redis.Redis` for every
cache operation. The connections themselves come from a shared pool, but
building the client object is not free: redis-py fills a table of some 170
response callbacks each time, which cost more CPU than the round trip to a local
Redis. A lead page makes several cache calls, so this backend keeps the client
it built for each pool and reuses it; everything else (serializer, pools,
options, key handling) is Django's. A `redis.Redis` over a connection pool is
safe to share between threads.

It also offers `delete_if_equal`, an atomic compare-and-delete (a Lua script),
for locks that only their owner may release (leads.freshness). And, for any
shared backend, `row_copy`/`rows_changed`: copies of database rows that a page
reads on every view (the workspace, permissions, "Changed here"), kept in the
cache and never used once the rows change. `read_ahead` lets a view make the
reads of several of these modules in one round trip.

settings.py swaps this in for `django.core.cache.backends.redis.RedisCache`,
which is what django-environ makes of a `redis://` CACHE_URL.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from django.core.cache import cache, caches
from django.core.cache.backends import redis as django_redis
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache

_T = TypeVar("_T")


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[Any, Any] = {}  # pool -> the client built on it

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        # Django's own attributes (redis.py), which django-stubs does not declare.
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
        client = self._clients.get(pool)
        if client is None:
            client = self._clients[pool] = self._client(  # type: ignore[attr-defined]
                connection_pool=pool
            )
        return client


# Deletes KEYS[1] only while it still holds ARGV[1], in one atomic step.
_DELETE_IF_EQUAL = """
if redis.call("get", KEYS[1]) == ARGV[1] then
    return redis.call("del", KEYS[1])
end
return 0
"""


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient

    def delete_if_equal(self, key: str, value: Any, version: int | None = None) -> bool:
        """Delete `key` if it holds `value`, atomically (a lock released by its owner only).

        The comparison is of the stored bytes: `value` is serialized as `set` would.
        """
        key = self.make_and_validate_key(key, version=version)
        backend: RedisCacheClient = self._cache  # type: ignore[attr-defined]
        client = backend.get_client(key, write=True)
        serialized = backend._serializer.dumps(value)  # type: ignore[attr-defined]
        return bool(client.eval(_DELETE_IF_EQUAL, 1, key, serialized))


# --- Reads made ahead, in one round trip -------------------------------------------

# Keys read ahead by the current request's `read_ahead` block, and what the
# cache held (_ABSENT: nothing). Each key answers one read: a module that reads
# a key again (after writing it, say) asks the cache.
_read_ahead: ContextVar[dict[str, Any] | None] = ContextVar("leadsite_read_ahead", default=None)
_ABSENT = object()


@contextmanager
def read_ahead(keys: Iterable[str]) -> Iterator[None]:
    """Read `keys` from the default cache now, in one round trip, for the reads of the block.

    A page reads several independent entries (the workspace, the lead's copy,
    permissions...), each module on its own: one round trip each. Inside this
    block, `get_many` answers a module's read from what was read here, when it
    asks only for keys read here, and each key only once: what the module sees
    is what the cache held when the block began, as if it had read then
    (until `read_ahead_is_old`).
    """
    keys = list(dict.fromkeys(keys))
    found = cache.get_many(keys) if keys else {}
    token = _read_ahead.set({key: found.get(key, _ABSENT) for key in keys})
    try:
        yield
    finally:
        _read_ahead.reset(token)


def read_ahead_is_old() -> None:
    """The enclosing `read_ahead`'s values may be seconds old now: read afresh from here on.

    Called after waiting on PollyBot (leads.freshness), so that the page's other
    reads (permissions, "Changed here", recent leads) are not older than the call.
    """
    ahead = _read_ahead.get()
    if ahead is not None:
        ahead.clear()


def get_many(keys: list[str]) -> dict[str, Any]:
    """`cache.get_many(keys)`, answered from the enclosing `read_ahead` when it can be."""
    ahead = _read_ahead.get()
    if ahead is not None and all(key in ahead for key in keys):
        values = [ahead.pop(key) for key in keys]
        return {key: value for key, value in zip(keys, values, strict=True) if value is not _ABSENT}
    return cache.get_many(keys)


# --- Copies of database rows, kept in the shared cache --------------------------------


def shared_between_processes() -> bool:
    """Whether every process reads the same default cache (Redis, Memcached, files...).

    Local memory is each process's own: a copy of a row kept there could not be
    replaced in the other processes when the row changes, so copies of rows are
    kept only in a shared cache, and read from the database otherwise.
    """
    return not isinstance(caches["default"], LocMemCache | DummyCache)


def row_copy_keys(generation_key: str, entry_key: str) -> list[str]:
    """What `row_copy` reads from the cache (for `read_ahead`): nothing in local memory."""
    return [generation_key, entry_key] if shared_between_processes() else []


def row_copy(*, generation_key: str, entry_key: str, ttl: int, load: Callable[[], _T]) -> _T:
    """What `load` reads from the database, from the shared cache while it is current.

    The entry is stamped with the generation token it was read under (one
    round trip reads both). `rows_changed` replaces the token whenever the rows
    change (and again when that transaction commits), so a copy read before a
    change, or during one, is never used after it.
    """
    if not shared_between_processes():
        return load()
    found = get_many([generation_key, entry_key])
    generation = found.get(generation_key)
    if generation is None:
        # The first read since the cache was emptied: start a generation. If
        # another request (or a change) started one first, this read is not kept.
        token = secrets.token_hex(8)
        if not cache.add(generation_key, token, ttl):
            return load()
        generation = token
    entry = found.get(entry_key)
    if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == generation:
        value: _T = entry[1]
        return value
    value = load()
    # Stamped with the token read *before* the database: if a change landed in
    # between, the stamp is already old and the entry is never used.
    cache.set(entry_key, (generation, value), ttl)
    return value


def rows_changed(generation_key: str, ttl: int) -> None:
    """Every copy stamped under `generation_key` is out of date from now on."""
    cache.set(generation_key, secrets.token_hex(8), ttl)
