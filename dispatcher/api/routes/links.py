"""Webhooks and pages for links (filled in by the real-channels work)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
