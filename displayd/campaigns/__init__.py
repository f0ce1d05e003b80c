"""Campaigns: windows of time, playlists of approved slogans, target boards, priorities
(`service`, `endpoints`), and the document's plan as campaigns (`document`). The
edit-aware plan boards follow lives in `displayd.live.plan`."""
