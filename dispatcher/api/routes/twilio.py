"""Webhooks and pages for twilio (filled in by the real-channels work)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
