"""The entry point `celery -A workers` loads: the Flask app and its Celery app.

Like Flask's `make_celery.py`, this is the one place a process builds the app at import,
because Celery's command line needs an app object to import.
"""
from newsletter import create_app
from workers.celery_app import celery_init_app

flask_app = create_app()
app = celery_init_app(flask_app)
