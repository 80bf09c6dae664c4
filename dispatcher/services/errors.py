"""Service-level refusals that are not about a field of the input."""

from __future__ import annotations


class NotFound(LookupError):
    pass


class Forbidden(PermissionError):
    pass


class NotReady(RuntimeError):
    """The service cannot do this yet (e.g. no site loaded)."""
