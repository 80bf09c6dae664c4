"""Runtimes: the same engine passes, run in-process (embedded) or on Celery workers + a scheduler."""
