"""``check-config --data`` and ``features --list``: the config checked against the data.

Both load the tables once, fit the feature spec (which runs leak detection),
and report in words; a user's mistake ends with a clean error, never a traceback.
"""

from __future__ import annotations

from rich.text import Text

from features.config import CompanyConfig
from trialcast.cli_common import console, fail


def _builder(config: CompanyConfig):
    from features.build import FeatureBuilder
    from features.loaders import load_tables
    from features.validation import InputError

    try:
        with console.status("Loading and validating the tables..."):
            loaded = load_tables(config)
    except InputError as exc:
        fail(str(exc))
    return FeatureBuilder.from_tables(loaded.tables, config)


def check_config_data(config: CompanyConfig) -> None:
    """Print leak findings, then fail with every unknown event / PQL feature (did you mean)."""
    from features.config_check import check_against_data
    from features.table_leaks import table_leaks_in_training_set

    builder = _builder(config)
    for note in builder.spec.leak_notes:
        console.print(note, style="bold yellow")
    with console.status("Checking the feature-table columns on the labelled trials..."):
        table_leaks, skipped = table_leaks_in_training_set(builder)
    for leak in table_leaks:
        console.print(
            f"LEAK? {leak.message()} by `trialcast train`; drop it from "
            "[feature_table.columns] or list it in [feature_table].exclude_columns, "
            "unless it is known before the outcome",
            style="bold yellow",
        )
    if skipped:
        console.print(f"  {skipped}")
    if not builder.spec.leak_notes and not table_leaks:
        console.print(
            "  leak scan: no outcome-like event, post-purchase column or label-like "
            "feature-table column found"
        )
    problems = check_against_data(config, builder)
    if problems:
        fail(
            f"{len(problems)} problem(s) against the data:\n"
            + "\n".join(f"  {p}" for p in problems)
        )
    console.print(
        Text.assemble(("ok", "green"), " every event name and PQL feature exists in the data")
    )


def list_feature_names(config: CompanyConfig) -> None:
    """Print every feature column this config builds on this data, one per line."""
    from features.config_check import built_feature_names

    builder = _builder(config)
    for note in builder.spec.leak_notes:
        console.print(note, style="bold yellow")
    for name in built_feature_names(builder):
        console.print(name, highlight=False)
