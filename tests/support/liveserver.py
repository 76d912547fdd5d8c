"""The test app served over real HTTP on loopback, for a browser or any other client.

The socket is bound first (port 0, so no other process can take it meanwhile) and the
app is attached afterwards: the app must know its own address before it is built, since
mails carry absolute links (BASE_URL) and the worker process builds its links from the
same configuration.

    server = LiveServer()                       # bound: server.url is final
    app = create_app(config | {"BASE_URL": server.url})
    server.start(app)                           # serving; /healthz answered
    ...
    server.stop()
"""
from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request

from werkzeug.serving import make_server

LOOPBACK = "127.0.0.1"


def _not_started(environ, start_response):
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"the live server has no app yet"]


class LiveServer:
    """werkzeug's threaded development server in a background thread."""

    def __init__(self, host: str = LOOPBACK) -> None:
        self.server = make_server(host, 0, _not_started, threaded=True)
        self.host = host
        self.port = self.server.server_port
        self.thread: threading.Thread | None = None
        self.requests = threading.Condition()
        self.running = 0  # requests inside the app now
        self.stopping = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, app, timeout: float = 10) -> None:
        """Serve `app` from now on; return once it answers GET /healthz."""
        self.server.app = self._guarded(app)
        self.thread = threading.Thread(target=self.server.serve_forever, name="live-server",
                                       daemon=True)
        self.thread.start()
        self._wait_healthy(timeout)

    def _wait_healthy(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > end:
                    raise
            time.sleep(0.05)

    def _guarded(self, app):
        """`app`, counted while a request is inside it and closed to requests once the server
        stops. werkzeug serves each connection on a thread of its own that shutdown() does
        not wait for: a late webhook or a kept-alive browser could still be inside the app,
        holding a database connection, when the test disposes of the app's engine (the
        connection then goes back to the discarded pool and is collected still open)."""
        def guarded(environ, start_response):
            with self.requests:
                if self.stopping:
                    return _not_started(environ, start_response)
                self.running += 1
            try:
                return app(environ, start_response)  # Flask has closed the request's session by now
            finally:
                with self.requests:
                    self.running -= 1
                    self.requests.notify_all()
        return guarded

    def stop(self, timeout: float = 10) -> None:
        """Stop accepting, let the requests inside the app finish, close the socket. Safe twice."""
        if self.thread is not None:
            self.server.shutdown()
            self.thread.join(timeout)
            self.thread = None
        with self.requests:
            self.stopping = True
            self.requests.wait_for(lambda: self.running == 0, timeout)
        self.server.server_close()
