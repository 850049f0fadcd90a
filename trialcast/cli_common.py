"""What every ``trialcast`` command module shares: consoles, failing cleanly, loading the config."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from features.config import CompanyConfig, ConfigError, load_config
from models.settings import ENV_OUTPUT_DIR

if TYPE_CHECKING:
    import pandas as pd

#: Markup is off: messages quote config keys in brackets (``[leakage].exclude_events``,
#: ``[[pql.conditions]]``) and must print them as written; styles go in ``style=`` / ``Text``.
console = Console(markup=False)
err = Console(stderr=True, markup=False)


#: What ``train`` and ``milestones`` say when no account has a conversion date.
NO_LABELS = (
    "accounts.converted_at: no account has a conversion date (the column is missing, "
    "unmapped or empty), so there is nothing to learn from. Add converted_at to the "
    "accounts (or map it under [sources.accounts.columns] / list it in "
    "[feature_table].account_columns); if the export only says whether a trial converted "
    "(yes/no, 1/0), set [trial].conversion_flag to that column"
)


def fail_without_labels(accounts: pd.DataFrame) -> None:
    """Exit with ``NO_LABELS`` when no account has a conversion date (nothing to learn)."""
    if accounts["converted_at"].isna().all():
        fail(NO_LABELS)


def fail(message: str) -> NoReturn:
    """Print ``message`` as an error and exit with code 2 (bad input, not a crash)."""
    err.print(Text.assemble(("error:", "bold red"), " ", message))
    raise typer.Exit(code=2)


def parse_moment(text: str | None, option: str = "--as-of") -> pd.Timestamp | None:
    """``text`` as a moment (naive UTC), ``None`` when not given, or a clean exit."""
    import pandas as pd  # not at import time: ``--help`` stays light

    if not text:
        return None
    try:
        moment = pd.Timestamp(text)
    except ValueError:
        fail(
            f"{option}: not a date/time: {text!r}; use ISO 8601, e.g. 2026-04-30 or 2026-04-30T12:00"
        )
    return moment.tz_convert("UTC").tz_localize(None) if moment.tzinfo else moment


def stop(message: str, code: int) -> NoReturn:
    """Print ``message`` as a plain answer (not an error) and exit with ``code``."""
    err.print(message, markup=False, highlight=False)
    raise typer.Exit(code=code)


def load_config_or_exit(path: Path) -> CompanyConfig:
    """The checked company config, or a clean exit listing every problem in it.

    Also makes the config's ``output_dir`` the output root of this process and of
    any service it starts (``use_output_root``)."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        fail(str(exc))
    use_output_root(config)
    return config


#: The output root this process put in ``TRIALCAST_OUTPUT_DIR`` (None: not set by us).
_SET_HERE: list[str] = []


def use_output_root(config: CompanyConfig) -> None:
    """Make ``config``'s output root the process's (``TRIALCAST_OUTPUT_DIR``).

    A value the user set wins; one this process set for an earlier config is
    replaced, so a notebook that runs two companies' commands in turn writes each
    into its own folder.
    """
    current = os.environ.get(ENV_OUTPUT_DIR)
    if current is not None and current not in _SET_HERE:
        return
    root = str(config.output_root)
    os.environ[ENV_OUTPUT_DIR] = root
    _SET_HERE.append(root)


def say(message: str, style: str | None = None) -> None:
    """Print text that may hold brackets (``[sources]``, ``[model].min_positives``) as written."""
    console.print(message, markup=False, highlight=False, style=style)
