"""Which rate limiter a server process uses: the one place the settings choose it.

Redis when one is configured (``Settings.shared_redis_url``); else the store when it is
PostgreSQL, which every API process shares; else (SQLite: one process by design) this
process's own token buckets."""

from __future__ import annotations

from opendms.config import Settings
from opendms.gateway.ratelimit import Limiter, TokenBuckets
from opendms.gateway.ratelimit_redis import RedisWindows
from opendms.gateway.ratelimit_store import StoreWindows
from opendms.identity.credentials import CredentialStore, PostgresCredentials


def limiter_for(settings: Settings, credentials: CredentialStore) -> Limiter:
    local = TokenBuckets(settings.rate_limit)
    redis_url = settings.shared_redis_url
    if redis_url:
        return RedisWindows(redis_url, settings.rate_limit, fallback=local)
    if isinstance(credentials, PostgresCredentials):
        return StoreWindows(credentials.pool, settings.rate_limit)
    return local
