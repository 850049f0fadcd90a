"""What every worker of one service must agree on about sign-ins: failed tries and
ended sessions, kept in small SQLite files all workers share.

- ``FailureThrottle`` counts wrong tokens per client address (the sales view's
  login form, and bearer tokens on the API, each in its own file) with an
  exponential back-off.
- ``SessionRevocations`` remembers the sessions that signed out, so that an old
  cookie no longer opens the sales view even though its signature is still good.

The files live in ``TRIALCAST_STATE_DIR`` (else the temporary folder), named by a
digest of the API token, so two services with different tokens never share them.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
import time
from pathlib import Path

ENV_STATE_DIR = "TRIALCAST_STATE_DIR"
#: Wrong tries allowed per client address before the back-off starts.
FREE_FAILURES = 5
#: Longest lock-out after repeated wrong tries (the back-off doubles up to this).
MAX_LOCKOUT_SECONDS = 15 * 60


def state_file(token: str, kind: str) -> Path:
    """The shared file of ``kind`` (``logins``, ``bearer``, ``sessions``) for this token."""
    root = Path(os.environ.get(ENV_STATE_DIR) or tempfile.gettempdir())
    digest = hashlib.sha256(token.encode()).hexdigest()[:12]
    return root / f"trialcast-{kind}-{digest}.sqlite"


class _SharedTable:
    """One SQLite file, opened per call (workers are separate processes)."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute(schema)

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=5, isolation_level=None)


class FailureThrottle(_SharedTable):
    """Counts wrong tries per client address in a small SQLite file all workers share.

    After ``FREE_FAILURES`` wrong tries the address is locked out for 1 s, then 2 s,
    4 s, ... up to ``MAX_LOCKOUT_SECONDS``; during a lock-out even the right token is
    refused (429 with ``Retry-After``), so guessing cannot speed up. A right token
    outside a lock-out clears the count.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(
            path,
            "CREATE TABLE IF NOT EXISTS failures "
            "(client TEXT PRIMARY KEY, count INTEGER, locked_until REAL)",
        )

    @classmethod
    def for_token(cls, token: str, kind: str = "logins") -> FailureThrottle:
        """The throttle of this service for ``kind`` (``logins`` or ``bearer``)."""
        return cls(state_file(token, kind))

    def retry_after(self, client: str, now: float | None = None) -> float:
        """Seconds until ``client`` may try again (0 when it may now)."""
        now = time.time() if now is None else now
        with self._db() as db:
            row = db.execute(
                "SELECT locked_until FROM failures WHERE client = ?", (client,)
            ).fetchone()
        return max(0.0, float(row[0]) - now) if row else 0.0

    def status(self, client: str) -> tuple[int, float]:
        """``(wrong tries counted, lock-out end as a Unix time)`` of ``client``."""
        with self._db() as db:
            row = db.execute(
                "SELECT count, locked_until FROM failures WHERE client = ?", (client,)
            ).fetchone()
        return (int(row[0]), float(row[1])) if row else (0, 0.0)

    def failed(self, client: str, now: float | None = None) -> float:
        """Record a wrong try; returns the lock-out it starts (0 while still free)."""
        now = time.time() if now is None else now
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT count FROM failures WHERE client = ?", (client,)).fetchone()
            count = (row[0] if row else 0) + 1
            over = count - FREE_FAILURES
            lock = 0.0 if over <= 0 else float(min(2 ** (over - 1), MAX_LOCKOUT_SECONDS))
            db.execute(
                "INSERT OR REPLACE INTO failures VALUES (?, ?, ?)", (client, count, now + lock)
            )
            db.execute("COMMIT")
        return lock

    def succeeded(self, client: str) -> None:
        """Forget ``client``'s wrong tries."""
        with self._db() as db:
            db.execute("DELETE FROM failures WHERE client = ?", (client,))


class SessionRevocations(_SharedTable):
    """Session ids that signed out, until their cookie would have expired anyway."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            path, "CREATE TABLE IF NOT EXISTS revoked (id TEXT PRIMARY KEY, until REAL)"
        )

    @classmethod
    def for_token(cls, token: str) -> SessionRevocations:
        """The revocation list of this service."""
        return cls(state_file(token, "sessions"))

    def revoke(self, session_id: str, until: float) -> None:
        """End ``session_id`` now (kept until ``until``, its natural expiry); prunes old rows."""
        now = time.time()
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO revoked VALUES (?, ?)", (session_id, until))
            db.execute("DELETE FROM revoked WHERE until < ?", (now,))

    def is_revoked(self, session_id: str) -> bool:
        """True when ``session_id`` signed out."""
        with self._db() as db:
            row = db.execute("SELECT 1 FROM revoked WHERE id = ?", (session_id,)).fetchone()
        return row is not None
