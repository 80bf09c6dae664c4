"""Board routes (login, overview, per-warning board, live updates, exports)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
