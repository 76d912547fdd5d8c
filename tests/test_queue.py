"""queue.enqueue: messages reach the real Redis broker only once their transaction commits."""
from __future__ import annotations

import base64
import json

import pytest

from newsletter import queue
from newsletter.models import FeedFetch

# kombu's Redis transport pushes each message of the default queue onto this list.
BROKER_LIST = "celery"


def published(broker) -> list[tuple[str, list]]:
    """(task name, args) of every message waiting in the broker, oldest first."""
    messages = []
    for raw in reversed(broker.lrange(BROKER_LIST, 0, -1)):  # LPUSH: newest first
        envelope = json.loads(raw)
        assert envelope["content-type"] == "application/json"
        assert envelope["properties"]["body_encoding"] == "base64"
        args, kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        assert kwargs == {}
        messages.append((envelope["headers"]["task"], args))
    return messages


def test_nothing_is_published_before_commit(session, broker):
    session.add(FeedFetch(url="https://wire.example.org/rss"))
    session.flush()

    queue.enqueue(session, "feeds.fetch", 1)

    assert published(broker) == []


def test_commit_publishes_the_task_with_its_arguments(session, broker):
    fetch = FeedFetch(url="https://wire.example.org/rss")
    session.add(fetch)
    session.flush()
    queue.enqueue(session, "feeds.fetch", fetch.id)
    queue.enqueue(session, "feeds.poll")

    session.commit()

    assert published(broker) == [("feeds.fetch", [fetch.id]), ("feeds.poll", [])]


def test_rollback_publishes_nothing(session, broker):
    session.add(FeedFetch(url="https://wire.example.org/rss"))
    session.flush()
    queue.enqueue(session, "feeds.fetch", 1)

    session.rollback()
    session.commit()

    assert published(broker) == []


def test_work_queued_before_any_query_is_dropped_by_rollback(session, broker):
    queue.enqueue(session, "feeds.fetch", 1)
    session.rollback()
    queue.enqueue(session, "feeds.fetch", 2)

    session.commit()

    assert published(broker) == [("feeds.fetch", [2])]


def test_each_commit_publishes_only_its_own_work(session, broker):
    queue.enqueue(session, "feeds.fetch", 1)
    session.commit()
    session.commit()
    queue.enqueue(session, "feeds.fetch", 2)
    session.commit()

    assert published(broker) == [("feeds.fetch", [1]), ("feeds.fetch", [2])]


def test_a_rolled_back_savepoint_drops_only_its_own_work(session, broker):
    queue.enqueue(session, "feeds.fetch", 1)
    with pytest.raises(LookupError):
        with session.begin_nested():
            queue.enqueue(session, "feeds.fetch", 2)
            raise LookupError("say, a duplicate that the caller handles")

    session.commit()

    assert published(broker) == [("feeds.fetch", [1])]



# ---------------------------------------------------------------- the hand-built message

ARGS = ("0" * 32, "Reader@example.com", {"ip": "198.51.100.7", "source": "api"}, "I agree.",
        "2026-11-25T08:00:00+00:00")
# What differs from one message to the next, or from one publishing process to another.
PER_MESSAGE = {("headers", "id"), ("headers", "root_id"), ("headers", "origin"),
               ("properties", "correlation_id"), ("properties", "delivery_tag"),
               ("properties", "reply_to")}


def without_per_message(envelope: dict) -> dict:
    return {part: {k: v for k, v in value.items() if (part, k) not in PER_MESSAGE}
            if isinstance(value, dict) else value
            for part, value in envelope.items()}


def test_redis_message_is_what_send_task_pushes(app, broker):
    with app.app_context():
        queue.publish("subscribers.signup", ARGS)
    [sent] = [json.loads(raw) for raw in broker.lrange(BROKER_LIST, 0, -1)]

    built = json.loads(queue.redis_message("subscribers.signup", ARGS))

    assert without_per_message(built) == without_per_message(sent)
    assert set(built["properties"]) == set(sent["properties"])
    assert built["headers"]["origin"] == sent["headers"]["origin"]  # this process's name


def test_each_redis_message_has_ids_of_its_own(app):
    first, second = (json.loads(queue.redis_message("feeds.poll", ())) for _ in range(2))

    assert first["headers"]["id"] == first["headers"]["root_id"] == first["properties"]["correlation_id"]
    assert first["headers"]["id"] != second["headers"]["id"]
    assert first["properties"]["delivery_tag"] != second["properties"]["delivery_tag"]
