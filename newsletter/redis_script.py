"""A Lua script run on one Redis connection per thread, past redis-py's client.

redis-py wraps each command in its pool's checkout and return, retries, metrics and
events, a good part of the CPU a one-round-trip request spends on Redis (the technique
newsletter.signup_gate uses for the sign-up gate; docs/performance.md). The connections
are still redis-py's (protocol, timeouts, AUTH and SELECT), taken from the client's pool
for good, so closing the pool closes them. EVALSHA is packed here (RESP is a few lines)
rather than by redis-py's general packer, which costs more than the rest of the call.
"""
from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass

import redis

REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


@dataclass(frozen=True)
class Packed:
    """Arguments already in RESP (`packed`), put at the end of a command as they are: for
    arguments that repeat across calls, so they are encoded once, not per call."""

    count: int
    data: bytes


NO_TAIL = Packed(0, b"")


class ThreadScript:
    """`script(keys, args[, tail])`: EVALSHA, loading the script first when Redis does not know
    it; `tail` (Packed) follows `args`."""

    def __init__(self, client: redis.Redis, source: str) -> None:
        self.pool, self.source = client.connection_pool, source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self.local = threading.local()

    def __call__(self, keys, args, tail: Packed = NO_TAIL):
        try:
            return self._evalsha(keys, args, tail)
        except redis.exceptions.ConnectionError:
            # Redis closed the connection since its last use (a restart, an idle timeout).
            return self._evalsha(keys, args, tail)

    def _evalsha(self, keys, args, tail: Packed):
        connection = self._connection()
        try:
            packed = pack(("EVALSHA", self.sha, len(keys), *keys, *args), tail)
            try:
                return _command(connection, packed)
            except redis.exceptions.NoScriptError:  # a new Redis, or one restarted since
                _command(connection, pack(("SCRIPT", "LOAD", self.source)))
                return _command(connection, packed)
        except REDIS_DOWN:
            connection.disconnect()
            raise

    def release(self) -> None:
        """Give the calling thread's connection back to the pool (a thread that ends)."""
        connection = getattr(self.local, "connection", None)
        if connection is not None and connection.pid == os.getpid():
            self.local.connection = None
            self.pool.release(connection)

    def _connection(self):
        connection = getattr(self.local, "connection", None)
        if connection is None or connection.pid != os.getpid():  # none yet, or forked since
            connection = self.local.connection = self.pool.get_connection()
        return connection


def pack(args, tail: Packed = NO_TAIL) -> bytes:
    """A command in RESP: an array of bulk strings (str as UTF-8, numbers as their digits),
    `tail`'s already packed ones last."""
    parts = [b"*%d\r\n" % (len(args) + tail.count)]
    parts += _bulk_strings(args)
    parts.append(tail.data)
    return b"".join(parts)


def packed(args) -> Packed:
    """`args` in RESP, for `pack`'s tail."""
    return Packed(len(args), b"".join(_bulk_strings(args)))


def _bulk_strings(args) -> list[bytes]:
    parts = []
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return parts


def _command(connection, packed: bytes):
    connection.send_packed_command([packed], check_health=False)
    return connection.read_response()
