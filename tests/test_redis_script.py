"""redis_script: our RESP packing against redis-py's, and scripts on a real Redis."""
from __future__ import annotations

import time

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from redis.connection import PythonRespSerializer

from newsletter.redis_script import REDIS_DOWN, ThreadScript, pack, packed
from newsletter.redis_url import for_redis_py

ECHO = "return {#KEYS, KEYS[1] or '', ARGV[1] or '', ARGV[2] or ''}"


def redis_py_pack(args) -> bytes:
    serializer = PythonRespSerializer(buffer_cutoff=1 << 30, encode=lambda v: v if isinstance(v, bytes)
                                      else str(v).encode())
    return b"".join(serializer.pack(*args))


@given(st.lists(st.one_of(st.text(), st.binary(), st.integers(), st.floats(allow_nan=False))))
def test_pack_is_what_redis_py_sends(args):
    command = ("EVALSHA", *args)  # redis-py splits its first argument at spaces ("CONFIG GET")
    assert pack(command) == redis_py_pack(command)


ARG = st.one_of(st.text(), st.binary(), st.integers())


@given(st.lists(ARG), st.lists(ARG))
def test_a_packed_tail_is_the_same_command_as_its_arguments_given_last(args, tail):
    assert pack(("EVALSHA", *args), packed(tail)) == pack(("EVALSHA", *args, *tail))


def test_a_script_gets_its_packed_tail_after_its_arguments(broker):
    script = ThreadScript(broker, "return ARGV")

    assert script(keys=(), args=("a",), tail=packed(["b", 3])) == [b"a", b"b", b"3"]


def test_a_script_runs_with_keys_and_arguments_of_every_kind(broker):
    script = ThreadScript(broker, ECHO)

    assert script(keys=("k:é",), args=("naïve\r\nline", b"\x00\xff")) == [1, "k:é".encode(), "naïve\r\nline".encode(),
                                                                            b"\x00\xff"]
    assert script(keys=(), args=(1.5, 7)) == [0, b"", b"1.5", b"7"]


def test_a_redis_that_forgot_the_script_gets_it_again(broker):
    script = ThreadScript(broker, ECHO)
    script(keys=(), args=("a", "b"))
    broker.script_flush()  # as a restarted Redis would have

    assert script(keys=(), args=("c", "d")) == [0, b"", b"c", b"d"]


def test_a_closed_connection_is_opened_again(broker):
    script = ThreadScript(broker, ECHO)
    script(keys=(), args=("a", "b"))
    broker.client_kill_filter(_type="normal", skipme=True)  # drops the script's connection

    assert script(keys=(), args=("c", "d")) == [0, b"", b"c", b"d"]


def test_an_error_in_the_script_is_raised(broker):
    script = ThreadScript(broker, "return redis.call('INCR', KEYS[1])")
    broker.set("text", "not a number")
    with pytest.raises(redis.exceptions.ResponseError):
        script(keys=("text",), args=())


def test_a_script_slower_than_the_timeout_is_a_timeout_and_the_next_call_connects_again(redis_url):
    slow = redis.Redis.from_url(for_redis_py(redis_url), socket_timeout=0.1)
    script = ThreadScript(slow, "local t = redis.call('TIME') local stop = t[1] * 1e6 + t[2] + ARGV[1] "
                                "repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] >= stop return 1")
    try:
        with pytest.raises(REDIS_DOWN) as raised:
            script(keys=(), args=(400_000,))  # 0.4 s in Redis
        assert isinstance(raised.value, redis.exceptions.TimeoutError)
        time.sleep(0.5)  # the slow script ends; its reply went to the closed connection

        assert script(keys=(), args=(0,)) == 1
    finally:
        slow.close()
