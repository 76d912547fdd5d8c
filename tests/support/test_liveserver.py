"""The live server waits, when it stops, for the requests inside the app, and refuses later ones."""
from __future__ import annotations

import threading
import urllib.error
import urllib.request

import pytest

from tests.support.liveserver import LiveServer


def test_stop_waits_for_a_request_inside_the_app_and_refuses_the_next():
    inside, release, finished = threading.Event(), threading.Event(), []

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/slow":
            inside.set()
            release.wait(10)
            finished.append("slow")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    server = LiveServer()
    server.start(app)
    slow = threading.Thread(target=lambda: urllib.request.urlopen(server.url + "/slow", timeout=10).read())
    slow.start()
    assert inside.wait(10)
    threading.Timer(0.3, release.set).start()

    server.stop()

    assert finished == ["slow"]  # stop() returned only once the request had left the app
    slow.join(10)
    assert server.running == 0 and server.stopping
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.url + "/healthz", timeout=2)
