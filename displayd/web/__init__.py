"""The operators' dashboard (`/ui`) and the web player (`/play/{id}`): pages, assets, sessions.

- `pages`: the routes (sign-in, dashboard, rotation log, week plan, player, static files)
- `session`: the HttpOnly session cookie and the same-origin check on form posts
- `render`: `string.Template` pages with every value escaped
- `plan`: this week's plan per campaign, pure arithmetic
"""

from __future__ import annotations

from fastapi import APIRouter

from displayd.web.pages import router as pages_router

router = APIRouter(include_in_schema=False)
router.include_router(pages_router)

__all__ = ["router"]
