"""A company's new SQLite MLflow store, copied from an empty store MLflow migrated once.

MLflow creates the tables of a new SQL store by running its Alembic migrations,
about a second on every first run of a company (and in every test that opens a
new store). It runs them only when tables are missing: a store whose schema is
already at the installed MLflow's head is opened as it is. So the first time a
new store is needed, the migrations run once into a template in the user's cache
(``mlflow-<version>-empty.db``, see ``cache_dir``), exactly as MLflow runs them
(``mlflow.store.db.utils._initialize_tables``); every new store after that is a
copy of it. MLflow then opens the copy as any store with its tables and does the
rest itself (its default experiment, under that store's own artifact root).

A template is used only when it is an empty MLflow store at the head revision of
the installed MLflow: its ``alembic_version`` is that head, it has every table
MLflow defines, nothing but MLflow's own seed rows, and SQLite finds it intact. A
template that fails any check is rebuilt. Nothing here replaces an existing
file: the copy appears under the store's name in one step (a hard link) or not
at all, and anything unexpected (no cache folder, no hard links, MLflow internals
moved) leaves the store to MLflow's normal path, which raises its own errors.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger("trialcast.training")

ENV_CACHE_DIR = "TRIALCAST_CACHE_DIR"

#: Tables whose rows MLflow's migrations themselves write into a new store (the
#: schema revision; the ``default`` workspace).
_SEED_ROWS = {"alembic_version", "workspaces"}

#: How long a process waits for another one building the same template.
LOCK_TIMEOUT_S = 120.0


def cache_dir() -> Path:
    """The user cache: ``TRIALCAST_CACHE_DIR``, else ``$XDG_CACHE_HOME/trialcast``, else
    ``~/.cache/trialcast``."""
    explicit = os.environ.get(ENV_CACHE_DIR)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trialcast"


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///<path>`` URI; None for any other store.

    In-memory databases and URIs with query options or escapes are left alone.
    """
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///")
    if not path or path == ":memory:" or any(c in path for c in "?%#"):
        return None
    return Path(path)


def seed_new_store(uri: str) -> bool:
    """Create ``uri``'s SQLite store as a copy of the migrated empty template, if the
    store's file does not exist yet. Returns whether it did.

    Any failure is logged and leaves the store to MLflow (which then creates it
    with its migrations and reports its own errors).
    """
    path = sqlite_file(uri)
    if path is None or path.exists():
        return False
    try:
        template = empty_store_template()
        path.parent.mkdir(parents=True, exist_ok=True)
        return _copy_new(template, path)
    except Exception as exc:  # MLflow's own path follows, with its own errors
        log.warning("new MLflow store %s: not from the template (%s); MLflow creates it", path, exc)
        return False


def empty_store_template(folder: Path | None = None) -> Path:
    """The migrated empty store of the installed MLflow (built on first use)."""
    import mlflow
    from mlflow.store.db.utils import _get_latest_schema_revision

    head = _get_latest_schema_revision()
    folder = folder or cache_dir()
    path = folder / f"mlflow-{mlflow.__version__}-empty.db"
    if is_empty_store(path, head):
        return path
    folder.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    with FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S):
        if not is_empty_store(path, head):  # not built by another process meanwhile
            _build(path, head)
    return path


def is_empty_store(path: Path, head: str) -> bool:
    """Whether ``path`` is an intact, empty MLflow store at schema revision ``head``."""
    if not path.is_file():
        return False
    import mlflow.store.db.utils  # noqa: F401 - fills Base.metadata with every MLflow table
    from mlflow.store.db.base_sql_model import Base

    try:
        with _read_only(path) as db:
            if db.execute("PRAGMA quick_check").fetchall() != [("ok",)]:
                return False
            if db.execute("SELECT version_num FROM alembic_version").fetchall() != [(head,)]:
                return False
            tables = {
                name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if not set(Base.metadata.tables) <= tables:
                return False
            for table in sorted(tables - _SEED_ROWS - {"sqlite_sequence"}):
                if db.execute(f'SELECT 1 FROM "{table}" LIMIT 1').fetchone() is not None:
                    return False
            if "workspaces" not in tables:
                return True
            others = db.execute("SELECT 1 FROM workspaces WHERE name != 'default' LIMIT 1")
            return others.fetchone() is None
    except sqlite3.Error:
        return False


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    try:
        yield db
    finally:
        db.close()


def _build(path: Path, head: str) -> None:
    """Run MLflow's migrations into a new file beside ``path``, check it, move it in place."""
    from mlflow.store.db.utils import _initialize_tables, create_sqlalchemy_engine_with_retry

    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".building", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        engine = create_sqlalchemy_engine_with_retry(f"sqlite:///{tmp}")
        try:
            _initialize_tables(engine)
        finally:
            engine.dispose()
        if not is_empty_store(tmp, head):
            raise RuntimeError(f"MLflow's migrations did not give an empty store at {head}")
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}-journal").unlink(missing_ok=True)


def _copy_new(template: Path, path: Path) -> bool:
    """Copy ``template`` to ``path`` unless ``path`` exists; the copy appears whole or not at all."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.seeding")
    try:
        shutil.copyfile(template, tmp)
        _fsync(tmp)
        try:
            os.link(tmp, path)  # fails, rather than replaces, when the store appeared meanwhile
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())
