"""Use cases. Each takes a Session already inside a transaction and the current time, and knows
nothing of HTTP, Celery or any provider."""
