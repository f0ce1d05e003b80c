"""Campaigns: windows of time, playlists of approved slogans, target boards, priorities."""
