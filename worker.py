"""The Celery app entry: ``celery -A worker worker``."""

from dispatcher.runtime.celery_app import app

__all__ = ["app"]
