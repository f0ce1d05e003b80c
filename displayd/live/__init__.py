"""The process's in-memory world: what boards are answered from, and how it follows changes.

    live = Live(sessionmaker, poll_seconds=1, metrics=metrics)
    await live.refresh()            # load the snapshot (after this process's own change)
    live.snapshot.showing(board_id, now)

One folder holds the way from a change to what boards see:
- `watch`: `Live`, the snapshot of this process, rebuilt after its own changes and when
  another process moved the change version (and what listens for rebuilds);
- `snapshot`: `Snapshot`, loaded from its own tables (boards, campaigns, approved slogans),
  and each board's plan, answers and ETags, with planning faults isolated per campaign and
  per board;
- `plan`: the edit-aware plan (an edit takes effect from the next slot);
- `poll`: the board poll path (`/current`), plain ASGI in front of FastAPI;
- `recorder`: what polls tell us (first polls of a slot, integrity incidents), written in
  batches off the poll path, and the slots sent on event streams;
- `stream`: the board event stream (`/events`, Server-Sent Events), plain ASGI too, and the
  hub that feeds every open stream (imported by the app, not here: it needs the delivery
  package, which imports this one).

`displayd.runtime.Runtime` holds one `Live`, one `PollRecorder` and one `StreamHub` per process.
"""

from displayd.live.poll import PollPath
from displayd.live.recorder import PollRecorder
from displayd.live.snapshot import Snapshot
from displayd.live.watch import Live

__all__ = ["Live", "PollPath", "PollRecorder", "Snapshot"]
