"""The master key, and the secrets derived from it.

A board's push secret is `whsec_` + base64(HMAC-SHA256(master key, "board-secret:" + nonce)):
the database keeps only the nonce and a hash, so a copy of the database signs nothing.
The master key is `settings.secret_key`; on SQLite without one, a key file is made once
beside the database file (mode 0600) and kept with it, like the database itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from displayd.config import Settings
from displayd.errors import Unavailable
from displayd.protocol import SECRET_PREFIX


def master_key(settings: Settings) -> bytes:
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    path = settings.sqlite_path
    if path is None:
        raise Unavailable(
            "DISPLAYD_SECRET_KEY must be set on PostgreSQL (every replica must share it); "
            "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    return _key_file(path.with_name(path.name + ".key"))


def _key_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it this instant
            key = path.read_bytes().strip()
            if key:
                return key
            time.sleep(0.02)
        raise Unavailable(f"the key file {path} is empty; delete it to make a new one") from None
    key = secrets.token_urlsafe(48).encode()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    return key


def board_secret(master: bytes, nonce: str) -> str:
    digest = hmac.new(master, b"board-secret:" + nonce.encode(), hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(digest).decode()


def secret_bytes(secret: str) -> bytes:
    """The HMAC key a `whsec_…` secret stands for (Standard Webhooks convention)."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))
