"""Read by gunicorn when started from this folder (the Procfile's `web`): the settings are
newsletter/gunicorn_config.py's, which the installed package carries for `newsletter dev`."""
from newsletter.gunicorn_config import keepalive, threads, worker_class, workers  # noqa: F401
