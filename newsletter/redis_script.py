"""A Lua script run on one Redis connection per thread, past redis-py's client.

redis-py wraps each command in its pool's checkout and return, retries, metrics and
events, a good part of the CPU a one-round-trip request spends on Redis (the technique
newsletter.signup_gate uses for the sign-up gate; docs/performance.md). The connections
are still redis-py's (protocol, timeouts, AUTH and SELECT), taken from the client's pool
for good, so closing the pool closes them.
"""
from __future__ import annotations

import hashlib
import os
import threading

import redis

REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class ThreadScript:
    """`script(keys, args)`: EVALSHA, loading the script first when Redis does not know it."""

    def __init__(self, client: redis.Redis, source: str) -> None:
        self.pool, self.source = client.connection_pool, source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self.local = threading.local()

    def __call__(self, keys, args):
        try:
            return self._evalsha(keys, args)
        except redis.exceptions.ConnectionError:
            # Redis closed the connection since its last use (a restart, an idle timeout).
            return self._evalsha(keys, args)

    def _evalsha(self, keys, args):
        connection = self._connection()
        try:
            try:
                return _command(connection, "EVALSHA", self.sha, len(keys), *keys, *args)
            except redis.exceptions.NoScriptError:  # a new Redis, or one restarted since
                _command(connection, "SCRIPT", "LOAD", self.source)
                return _command(connection, "EVALSHA", self.sha, len(keys), *keys, *args)
        except REDIS_DOWN:
            connection.disconnect()
            raise

    def _connection(self):
        connection = getattr(self.local, "connection", None)
        if connection is None or connection.pid != os.getpid():  # none yet, or forked since
            connection = self.local.connection = self.pool.get_connection()
        return connection


def _command(connection, *args):
    connection.send_command(*args)
    return connection.read_response()
