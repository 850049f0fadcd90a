"""Refuse ``trialcast serve`` without a usable API token before anything heavy is imported.

The CLI module imports pandas and the feature code; on a busy machine that alone
takes seconds. ``trialcast/__init__.py`` calls ``refuse_serve_without_token`` first (for the console script only), so a
missing token is reported (exit code 2, one line, no traceback) within a second.
"""

from __future__ import annotations

from collections.abc import Sequence


def refuse_serve_without_token(argv: Sequence[str]) -> None:
    """Exit with code 2 when the command is ``serve`` (not ``--help``) and the token is unusable."""
    args = list(argv[1:])
    if not args or args[0] != "serve" or "--help" in args:
        return
    from serving.security import exit_without_token

    exit_without_token()
