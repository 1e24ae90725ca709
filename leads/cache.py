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
for locks that only their owner may release (leads.freshness).

settings.py swaps this in for `django.core.cache.backends.redis.RedisCache`,
which is what django-environ makes of a `redis://` CACHE_URL.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends import redis as django_redis


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
