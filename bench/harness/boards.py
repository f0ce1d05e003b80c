"""Creating many boards fast: displayd's own board service, in batches, with displayd stopped.

    tokens, seconds = create_boards(displayd.settings(), board_ids(0, 1000), delivery="push",
                                    endpoint=lambda board_id: f"http://127.0.0.1:{port}/{board_id}")

`POST /api/v1/boards` takes ~60 boards/s (one transaction, one audit row and one change mark
each); `displayd.boards.service.create`, the code behind it, in batches of 500 per transaction
takes thousands a second. Run it while no `displayd serve` writes to the same SQLite file;
a serving displayd picks the boards up at start (or on its next change poll).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from displayd.config import Settings

BATCH = 500


def board_ids(first: int, count: int) -> list[str]:
    """bang-<first>..bang-<first+count-1>, five digits: they sort as they are numbered."""
    return [f"bang-{i:05d}" for i in range(first, first + count)]


def create_boards(settings: Settings, ids: Sequence[str], *, delivery: str, groups: Sequence[str] = (),
                  endpoint: Callable[[str], str] | None = None) -> tuple[dict[str, str], float]:
    """Create the boards `ids` (named "Bảng <id>"); (each board's poll token by id, seconds taken)."""
    from displayd.auth.roles import cli_principal
    from displayd.boards import service
    from displayd.boards.schemas import BoardCreate
    from displayd.db.session import create_engine, create_sessionmaker
    from displayd.keyring import master_key

    master, networks, actor = master_key(settings), settings.board_networks(), cli_principal("bench")
    tokens: dict[str, str] = {}

    async def work() -> None:
        engine = create_engine(settings)
        try:
            sessionmaker = create_sessionmaker(engine)
            for start in range(0, len(ids), BATCH):
                async with sessionmaker() as session, session.begin():
                    now = datetime.now(UTC)
                    for board_id in ids[start:start + BATCH]:
                        data = BoardCreate.model_validate({
                            "id": board_id, "name": f"Bảng {board_id}", "delivery": delivery, "groups": list(groups),
                            "endpoint_url": endpoint(board_id) if endpoint else None}).model_dump()
                        _, tokens[board_id], _ = await service.create(session, actor=actor, now=now, data=data,
                                                                      networks=networks, master=master)
        finally:
            await engine.dispose()

    started = time.monotonic()
    asyncio.run(work())
    return tokens, time.monotonic() - started
