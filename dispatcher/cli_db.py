"""The CLI's way into the database, imported when a command first opens a transaction: commands that
need none (``--help``, ``validate``, ``carriers``, ``import xlsx``, ``export xlsx``) start without
SQLAlchemy's ORM and the table definitions (0.2–0.3 s of CPU on the 2-core build machine; its core is
still loaded, by the settings reading the database URL)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .db.session import transaction
else:
    def transaction(*args: Any, **kwargs: Any) -> Any:
        """``dispatcher.db.session.transaction``, imported on the first call."""
        from .db.session import transaction as real

        return real(*args, **kwargs)

__all__ = ["transaction"]
