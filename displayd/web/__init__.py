"""The operators' dashboard (`/ui`) and the web player (`/play/{id}`): pages, assets, sessions."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)

__all__ = ["router"]
