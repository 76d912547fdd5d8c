"""A Lua script run on one Redis connection per thread, past redis-py's client.

redis-py wraps each command in its pool's checkout and return, retries, metrics and
events, and reads the reply through a general parser: more of the CPU a one-round-trip
request spends on Redis than the round trip's system calls (the technique
newsletter.signup_gate uses for the sign-up gate; docs/performance.md). The connections
are still redis-py's for connecting (address, TLS, AUTH, SELECT, protocol), taken from the
client's pool for good, so closing the pool closes them; a request then writes EVALSHA
(packed here: RESP is a few lines) to the socket and reads the reply itself. The socket
is blocking with its timeouts kept by the kernel (SO_SNDTIMEO, SO_RCVTIMEO): a Python
socket with a timeout polls before each send and each receive, a system call and a GIL
hand-over more each time. Together about 20 us of CPU less per call than through
redis-py (docs/performance.md, "Prompt decision").
"""
from __future__ import annotations

import errno
import hashlib
import os
import socket
import struct
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
            sock = self._socket(connection)
            packed = pack(("EVALSHA", self.sha, len(keys), *keys, *args), tail)
            try:
                return _command(sock, packed)
            except redis.exceptions.NoScriptError:  # a new Redis, or one restarted since
                _command(sock, pack(("SCRIPT", "LOAD", self.source)))
                return _command(sock, packed)
        except REDIS_DOWN:
            connection.disconnect()  # the next call connects again
            raise

    def _connection(self):
        connection = getattr(self.local, "connection", None)
        if connection is None or connection.pid != os.getpid():  # none yet, or forked since
            connection = self.local.connection = self.pool.get_connection()
        return connection

    def _socket(self, connection) -> socket.socket:
        """The connection's socket, connected (again, after an error) and made blocking."""
        if connection._sock is None:
            connection.connect()
        sock = connection._sock
        if sock is not getattr(self.local, "sock", None):
            _kernel_timeouts(sock, connection.socket_timeout)
            self.local.sock = sock
        return sock


def _kernel_timeouts(sock: socket.socket, timeout: float | None) -> None:
    sock.settimeout(None)
    if timeout:
        timeval = struct.pack("ll", int(timeout), int(timeout % 1 * 1_000_000))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)


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


def _command(sock: socket.socket, packed: bytes):
    try:
        sock.sendall(packed)
        data = sock.recv(READ_SIZE)
        while True:
            if not data:
                raise redis.exceptions.ConnectionError("Redis closed the connection")
            try:
                reply, end = parse_reply(data)
            except IncompleteReply:
                data += sock.recv(READ_SIZE)
                continue
            if end != len(data):  # one command, one reply: anything more is out of step
                raise redis.exceptions.ConnectionError("Redis sent more than one reply")
            return reply
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EWOULDBLOCK):  # SO_RCVTIMEO or SO_SNDTIMEO passed
            raise redis.exceptions.TimeoutError(f"Redis did not answer in time: {error}") from error
        raise redis.exceptions.ConnectionError(f"Redis connection failed: {error}") from error


# ---------------------------------------------------------------- replies

READ_SIZE = 65536


class IncompleteReply(Exception):
    """The bytes so far end inside a reply: read more."""


def parse_reply(data: bytes, at: int = 0):
    """The RESP2 or RESP3 reply that starts at `at`, as redis-py gives it without decoding
    (integers, bytes, lists, None), and the index past it. An error reply is raised as
    redis-py raises it (NoScriptError, BusyLoadingError, ResponseError); a nested one is
    returned as a ResponseError, as redis-py does."""
    value, end = _value(data, at)
    if isinstance(value, Exception):
        raise value
    return value, end


def _value(data: bytes, at: int):
    end = data.find(b"\r\n", at)
    if end < 0:
        raise IncompleteReply
    kind, line, at = data[at:at + 1], data[at + 1:end], end + 2
    if kind == b":":
        return int(line), at
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, at
        if len(data) < at + size + 2:
            raise IncompleteReply
        return data[at:at + size], at + size + 2
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, at
        items = []
        for _ in range(count):
            item, at = _value(data, at)
            items.append(item)
        return items, at
    if kind == b"+":
        return line, at
    if kind == b"_":
        return None, at
    if kind == b"-":
        return _error(line.decode(errors="replace")), at
    raise redis.exceptions.ConnectionError(f"unexpected reply from Redis: {data[at - len(line) - 3:at]!r}")


def _error(message: str) -> Exception:
    if message.startswith("NOSCRIPT"):
        return redis.exceptions.NoScriptError(message)
    if message.startswith("LOADING"):
        return redis.exceptions.BusyLoadingError(message)
    return redis.exceptions.ResponseError(message)
