"""Celery workers. `celery -A workers worker` finds the app in workers.celery.

Tasks live in workers/tasks.py: thin shims that take ids and call domain functions.
"""
