"""What every ``trialcast`` command module shares: consoles, failing cleanly, loading the config."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

from features.config import CompanyConfig, ConfigError, load_config

console = Console()
err = Console(stderr=True)


def fail(message: str) -> NoReturn:
    """Print ``message`` as an error and exit with code 2 (bad input, not a crash)."""
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


def load_config_or_exit(path: Path) -> CompanyConfig:
    """The checked company config, or a clean exit listing every problem in it."""
    try:
        return load_config(path)
    except ConfigError as exc:
        fail(str(exc))
