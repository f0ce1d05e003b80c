"""`displayd slogans import FILE`: load an approved-slogans document such as
`slogans/huong-dan-101-muc-IV.yaml`.

Imported slogans are approved with the document code as their approval reference. A text
already in the catalog (in any state) is left alone, so importing the same file twice
changes nothing. The whole file is checked before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from displayd.auth.roles import Principal
from displayd.catalog import service
from displayd.catalog.text import normalise_text
from displayd.errors import InvalidInput


@dataclass
class ImportResult:
    added: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Item:
    text: str
    number: int | None
    tags: tuple[str, ...]


def parse_document(path: Path) -> tuple[str, str, list[_Item]]:
    """(document code, source label, items); InvalidInput names the first problem."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("document"), dict):
        raise InvalidInput(f"{path}: expected a mapping with `document` and `slogans`")
    code = data["document"].get("code")
    if not isinstance(code, str) or not code.strip():
        raise InvalidInput(f"{path}: document.code is missing")
    section = data["document"].get("section")
    source = f"{code.strip()} mục {section}" if section else code.strip()
    raw_items = data.get("slogans")
    if not isinstance(raw_items, list) or not raw_items:
        raise InvalidInput(f"{path}: `slogans` must be a non-empty list")
    items: list[_Item] = []
    seen: set[str] = set()
    for position, raw in enumerate(raw_items, start=1):
        if not isinstance(raw, dict) or not isinstance(raw.get("text"), str):
            raise InvalidInput(f"{path}: slogan #{position} needs a `text`")
        try:
            text = normalise_text(raw["text"])
        except InvalidInput as exc:
            raise InvalidInput(f"{path}: slogan #{position}: {exc.detail}") from None
        number = raw.get("number")
        if number is not None and (not isinstance(number, int) or isinstance(number, bool) or number < 0):
            raise InvalidInput(f"{path}: slogan #{position}: number must be a whole number or null")
        if text in seen:
            raise InvalidInput(f"{path}: slogan #{position} repeats an earlier text")
        seen.add(text)
        kind = raw.get("kind")
        items.append(_Item(text=text, number=number, tags=(str(kind),) if kind else ()))
    return code.strip(), source, items


async def import_file(session: AsyncSession, path: Path, *, actor: Principal, now: datetime) -> ImportResult:
    code, source, items = parse_document(path)
    result = ImportResult()
    for item in items:
        existing = await service.find_by_text(session, item.text)
        if existing is not None:
            result.unchanged.append(existing.id)
            continue
        slogan = await service.create(
            session, actor=actor, now=now, text=item.text, number=item.number, source=source,
            tags=item.tags, status=service.APPROVED, approval_reference=code, action="slogan.import",
        )
        result.added.append(slogan.id)
    return result
