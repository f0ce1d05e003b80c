"""`displayd.changes.ChangeListener`: a wait ends when cancelled, however the notification falls."""

from __future__ import annotations

import asyncio

import pytest

from displayd.changes import ChangeListener


class OpenConnection:
    """Stands for the listening connection (`wait` only asks whether it is closed)."""

    def is_closed(self) -> bool:
        return False


async def test_a_wait_cancelled_as_a_notification_arrives_is_cancelled() -> None:
    """The process's watch task is cancelled as it stops; a notification heard in the same
    turn of the loop must not swallow that (it did with `asyncio.wait_for` on Python 3.11, and
    the watch loop, and so the app's shutdown, then never ended)."""
    listener = ChangeListener("postgresql://unused")
    listener.connection = OpenConnection()  # type: ignore[assignment]
    waiting = asyncio.create_task(listener.wait(30))
    await asyncio.sleep(0.01)  # it waits for a notification
    listener._notified()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_a_notification_ends_a_wait_and_a_quiet_one_times_out() -> None:
    listener = ChangeListener("postgresql://unused")
    listener.connection = OpenConnection()  # type: ignore[assignment]
    waiting = asyncio.create_task(listener.wait(30))
    await asyncio.sleep(0.01)
    listener._notified()
    assert await waiting is True
    assert await listener.wait(0.05) is False
