"""Config sections for where a company's tables live: sources and the feature table.

Split from ``features.config`` (which re-exports every name here): the contract's
columns, each table's source and column mapping, and how a per-account feature
table is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TableName = Literal["events", "accounts", "communications", "features"]

#: Columns of each contract table (DATA_CONTRACT.md); required ones first.
CONTRACT_COLUMNS: dict[str, dict[str, bool]] = {
    "events": {
        "account_id": True,
        "event": True,
        "timestamp": True,
        "user_id": False,
        "properties": False,
    },
    "accounts": {
        "account_id": True,
        "trial_start": True,
        "trial_end": True,
        "converted_at": False,
        "deal_value": False,
        "mrr": False,
        "churned_at": False,
    },
    "communications": {
        "account_id": True,
        "timestamp": True,
        "direction": True,
        "channel": True,
        "user_id": False,
        "sentiment": False,
        "text": False,
    },
    # A per-account feature table (``[sources.features]``, features.feature_table).
    "features": {
        "account_id": True,
        "as_of": False,
    },
}


class StrictModel(BaseModel):
    """A config section: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(StrictModel):
    """Where one table lives and how its columns map onto the contract.

    Attributes:
        path: a CSV, Parquet or DuckDB file (relative paths resolve against the
            config file's folder).
        url: any SQLAlchemy URL (``postgresql+psycopg://...``); use with ``table``
            or ``query``.
        format: ``csv``, ``parquet``, ``duckdb`` or ``sql``; inferred from ``path``
            / ``url`` when omitted.
        table: table name inside a DuckDB file or SQL database.
        query: a SQL query instead of ``table``.
        separator: CSV field separator.
        timestamp_format: ``strftime`` format of the timestamp columns; ISO 8601
            is parsed when omitted; ``unix_s``, ``unix_ms`` or ``unix_us`` for Unix
            epoch numbers (seconds, milliseconds, microseconds since 1970, UTC).
        columns: contract column name -> source column name (only those that differ).
    """

    path: str | None = None
    url: str | None = None
    format: Literal["csv", "parquet", "duckdb", "sql"] | None = None
    table: str | None = None
    query: str | None = None
    separator: str = ","
    timestamp_format: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_location(self) -> SourceConfig:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of 'path' or 'url'")
        if self.url is not None and self.table is None and self.query is None:
            raise ValueError("a SQL source needs 'table' or 'query'")
        return self

    def resolved_format(self) -> str:
        """The source format, from ``format`` or else the path suffix / URL."""
        if self.format:
            return self.format
        if self.url is not None:
            return "sql"
        suffix = Path(str(self.path)).suffix.lower()
        by_suffix = {
            ".csv": "csv",
            ".txt": "csv",
            ".parquet": "parquet",
            ".pq": "parquet",
            ".duckdb": "duckdb",
            ".db": "duckdb",
        }
        if suffix not in by_suffix:
            raise ValueError(
                f"cannot tell the format of {self.path!r}; set format = 'csv' | 'parquet' | 'duckdb'"
            )
        return by_suffix[suffix]


class SourcesConfig(StrictModel):
    """The company's tables. Only ``events`` is required to exist on disk; without an
    ``accounts`` source, accounts are derived from events (see ``TrialConfig``)."""

    events: SourceConfig | None = None
    accounts: SourceConfig | None = None
    communications: SourceConfig | None = None
    features: SourceConfig | None = None


class FeatureTableColumn(StrictModel):
    """One column of the feature table (``[feature_table.columns.<name>]``).

    Attributes:
        type: ``numeric`` (numbers; text that is not a number is emptied and
            reported), ``categorical`` (text levels) or ``boolean`` (true/false,
            yes/no, 1/0; used as 1/0).
        label: the words sales read in a reason ("hours to first report");
            the column name when omitted.
        unit: printed after the value ("h", "seats", "%"); none when empty.
    """

    type: Literal["numeric", "categorical", "boolean"] = "numeric"
    label: str | None = None
    unit: str = ""


class FeatureTableConfig(StrictModel):
    """How the feature table (``[sources.features]``) is read and used.

    Attributes:
        columns: feature columns, by their name in the table (after the
            ``[sources.features.columns]`` mapping); they become model columns
            ``table_<name>``. Empty: every column that is not a key or an
            account column, typed by its values.
        account_columns: contract ``accounts`` columns the table also carries
            (``trial_start``, ``trial_end``, ``converted_at``, ``deal_value``,
            ``mrr``, ``churned_at``). Without an ``[sources.accounts]`` source the
            accounts table, labels included, is taken from them. Never features.
        score_before_trial_end: a table without ``as_of`` gives a trial-end model
            only; scoring a trial that is still running is refused unless this is
            true (or the score command is given ``--allow-before-trial-end``).
        exclude_columns: columns of the table that are never features (known
            only after the outcome, ids, free text...), whether or not
            ``columns`` is given; each must exist in the table.
    """

    columns: dict[str, FeatureTableColumn] = Field(default_factory=dict)
    account_columns: list[str] = Field(default_factory=list)
    score_before_trial_end: bool = False
    exclude_columns: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _excluded_not_declared(self) -> FeatureTableConfig:
        both = [c for c in self.exclude_columns if c in self.columns]
        if both:
            raise ValueError(
                f"{', '.join(map(repr, both))} both declared in [feature_table.columns] and "
                "listed in exclude_columns; keep one"
            )
        return self

    @field_validator("account_columns")
    @classmethod
    def _contract_accounts(cls, v: list[str]) -> list[str]:
        allowed = [c for c in CONTRACT_COLUMNS["accounts"] if c != "account_id"]
        bad = [c for c in v if c not in allowed]
        if bad:
            raise ValueError(
                f"{', '.join(map(repr, bad))} not an accounts column; allowed: {', '.join(allowed)}"
            )
        return v
