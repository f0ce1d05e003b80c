"""`/api/v1/rotations` and `/api/v1/reports/airtime`."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["rotation log"])
