"""Boards: their settings and credentials, health, what each shows now and will show."""
