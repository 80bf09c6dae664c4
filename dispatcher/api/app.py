"""Kept as an import path (``dispatcher.api.app:production_app``): the app is made in ``dispatcher.web.app``."""

from __future__ import annotations

from ..web.app import Runtime, create_app, production_app, utc_now

__all__ = ["Runtime", "create_app", "production_app", "utc_now"]
