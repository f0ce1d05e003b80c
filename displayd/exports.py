"""CSV downloads: UTF-8 with a byte-order mark, streamed, and safe to open in a spreadsheet.

    return csv_download(chunks(), "nhat-ky-luan-phien.csv")   # chunks() yields csv_lines([...])

Spreadsheet programs run a cell that starts with `=`, `+`, `-` or `@` as a formula (and a
leading tab or carriage return can smuggle one past a check), so every cell that would start
with one of them is prefixed with `'`: a slogan, a board name or an error message from a
board never becomes a formula on an inspector's machine. Every export goes through
`csv_lines`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Any

from fastapi.responses import StreamingResponse

__all__ = ["BOM", "csv_cell", "csv_download", "csv_lines"]

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """One cell as text: instants in ISO 8601 UTC, None empty, formulas neutralised.

        csv_cell("=HYPERLINK(...)")  ->  "'=HYPERLINK(...)"
    """
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_lines(rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return buffer.getvalue()


def csv_download(chunks: AsyncIterator[str], filename: str) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        yield BOM.encode()
        async for chunk in chunks:
            yield chunk.encode("utf-8")

    return StreamingResponse(body(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})
