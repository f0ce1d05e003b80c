"""The operators' dashboard (`/ui`) and the web player (`/play/{id}`): pages, assets, sessions.

- `pages`: the routes (sign-in, dashboard, rotation log, week plan, player, static files)
- `session`: the server-side session's cookie and the same-origin check on form posts
- `render`: `string.Template` pages with every value escaped
- `plan`: any week's plan per campaign, pure arithmetic
- `docs`: `/docs` and `/redoc`, served offline from vendored files
- `report`: the campaign report page (`/ui/reports/{id}`), with `charts` (SVG) and `vi` (number formats)
- `emergency`: the emergency stop's banner on every page, and its start and lift forms
"""

from __future__ import annotations

from fastapi import APIRouter

from displayd.web.emergency import router as emergency_router
from displayd.web.pages import router as pages_router
from displayd.web.report import router as report_router

router = APIRouter(include_in_schema=False)
router.include_router(pages_router)
router.include_router(report_router)
router.include_router(emergency_router)

__all__ = ["router"]
