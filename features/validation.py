"""Check loaded tables against the data contract, repair what can be repaired, and
quarantine the rest.

Input is raw frames with contract column names (as ``loaders.load_table`` returns
them: timestamps may still be text, ids may be numbers). Output is ``Tables`` in
canonical form plus a ``ValidationReport`` that accounts for every input row:
rows in = rows kept + rows quarantined, per table.

Row checks are vectorised numpy/pandas, not pandera's per-check failure-case
machinery: an events table can have 20M rows and must validate in seconds, and
each failed row must be traced back to its position in the source. Pandera
declares the canonical schemas (``CANONICAL_SCHEMAS``: columns, dtypes,
nullability, value rules) and checks every validated table against them, so a
bug in the repair code cannot hand a broken table to the feature builders.
"""

from __future__ import annotations

import difflib
import functools
import sys

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from features.config import CONTRACT_COLUMNS, ValidationRules
from features.parallel import thread_map
from features.quarantine import InputError, Problem, RowLedger, ValidationReport, describe_value
from features.row_duplicates import flag_duplicates
from features.tables import TIMESTAMP_COLUMNS, Tables
from features.value_parsing import (
    as_text,
    missing_mask,
    parse_timestamps,
    to_number,
    to_number_read_as_written,
    value_codes,
)

__all__ = [
    "CANONICAL_SCHEMAS",
    "CHANNELS",
    "DIRECTIONS",
    "InputError",
    "Problem",
    "ValidationReport",
    "derive_accounts_from_events",
    "parse_timestamps",
    "require_columns",
    "validate_raw_tables",
    "validate_tables",
]

DIRECTIONS = ("inbound", "outbound")
CHANNELS = ("email", "chat", "call", "meeting", "ticket", "in_app")
#: Columns holding identifiers or names: canonical dtype ``str`` or ``category``.
TEXT_COLUMNS: dict[str, tuple[str, ...]] = {
    "events": ("account_id", "user_id", "event", "properties"),
    "accounts": ("account_id",),
    "communications": ("account_id", "user_id", "direction", "channel", "text"),
}
MONEY_COLUMNS = ("deal_value", "mrr")
_NAT = np.datetime64("NaT", "ns")


# --------------------------------------------------------------------------- schemas
def _is_text(s: pd.Series) -> bool:
    return s.dtype == "str" or isinstance(s.dtype, pd.CategoricalDtype)


_TEXT = pa.Check(_is_text, name="str_or_category", error="must be str or category dtype")


def _text(nullable: bool, unique: bool = False) -> pa.Column:
    return pa.Column(None, _TEXT, nullable=nullable, unique=unique)


def _ts(nullable: bool) -> pa.Column:
    return pa.Column("datetime64[ns]", nullable=nullable)


#: The canonical tables (see ``features.tables``), as pandera schemas. Extra columns
#: are allowed; every contract column is present after validation.
CANONICAL_SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "events": pa.DataFrameSchema(
        {
            "account_id": _text(False),
            "event": _text(False),
            "timestamp": _ts(False),
            "user_id": _text(True),
            "properties": _text(True),
        },
        strict=False,
    ),
    "accounts": pa.DataFrameSchema(
        {
            "account_id": _text(False, unique=True),
            "trial_start": _ts(False),
            "trial_end": _ts(False),
            "converted_at": _ts(True),
            "deal_value": pa.Column("float64", pa.Check.ge(0), nullable=True),
            "mrr": pa.Column("float64", pa.Check.ge(0), nullable=True),
            "churned_at": _ts(True),
        },
        checks=pa.Check(
            lambda df: df["trial_end"] >= df["trial_start"], name="trial_end_after_start"
        ),
        strict=False,
    ),
    "communications": pa.DataFrameSchema(
        {
            "account_id": _text(False),
            "timestamp": _ts(False),
            "direction": pa.Column(None, [_TEXT, pa.Check.isin(DIRECTIONS)], nullable=False),
            "channel": pa.Column(None, [_TEXT, pa.Check.isin(CHANNELS)], nullable=False),
            "user_id": _text(True),
            "sentiment": pa.Column("float64", pa.Check.in_range(-1, 1), nullable=True),
            "text": _text(True),
        },
        strict=False,
    ),
}


# --------------------------------------------------------------------------- helpers
def require_columns(table: str, frame: pd.DataFrame) -> None:
    """Raise ``InputError`` if ``frame`` lacks a required contract column of ``table``.

    The message lists the columns found and shows the config mapping that fixes
    it, with a "did you mean" when a found column looks like the missing one.
    """
    found = [str(c) for c in frame.columns]
    missing = [c for c, req in CONTRACT_COLUMNS[table].items() if req and c not in found]
    if not missing:
        return
    hints = []
    for col in missing:
        folded = {f.casefold().replace(" ", "_"): f for f in found}
        guess = folded.get(col) or next(iter(difflib.get_close_matches(col, found, n=1)), None)
        hints.append(f'{col} = "{guess or "<your column name>"}"')
    raise InputError(
        f"{table}: required column{'s' if len(missing) > 1 else ''} "
        f"{', '.join(repr(m) for m in missing)} not found. Columns found: "
        f"{', '.join(found) or '(none)'}. If the source names them differently, map them "
        f"in the config under [sources.{table}.columns], e.g. {'; '.join(hints)}"
    )


def _common_checks(ledger: RowLedger, canon: pd.DataFrame, fmt: str | None) -> pd.DataFrame:
    """Empty rows, missing required values, ids as text, timestamps parsed."""
    table, raw = ledger.table, ledger.raw
    missing = {c: missing_mask(raw[c]) for c in raw.columns}
    # pairwise: ``logical_and.reduce`` of a list first stacks it into one 2-D copy
    ledger.quarantine(functools.reduce(np.logical_and, missing.values()), "empty_row", None)
    for col, required in CONTRACT_COLUMNS[table].items():
        if required:
            ledger.quarantine(missing[col], "missing_value", col)
    for col in TEXT_COLUMNS[table]:
        if col in canon:
            canon[col] = as_text(canon[col])
    for col in TIMESTAMP_COLUMNS[table]:
        if col in canon:
            canon[col], bad = parse_timestamps(raw[col], fmt)
            ledger.quarantine(bad, "unparsable_timestamp", col)
    return canon


#: Up to this many rows set aside, their categories are looked for one by one.
_FEW_SET_ASIDE = 64
#: Codes compared per block when looking for one code among 20M.
_BLOCK = 1 << 20


def _occurs(codes: np.ndarray, code: int) -> bool:
    """Whether ``code`` occurs in ``codes``, block by block (stops at the first hit)."""
    return any((codes[lo : lo + _BLOCK] == code).any() for lo in range(0, len(codes), _BLOCK))


def _drop_unused_categories(s: pd.Series, dropped_codes: np.ndarray) -> pd.Series:
    """``cat.remove_unused_categories`` after rows with ``dropped_codes`` were set aside.

    Only a category of a set-aside row can have fallen out of use, so only those few
    are looked for among the kept codes (one pass, no sort of 20M codes).
    """
    cat = s.array
    codes = np.asarray(cat.codes)
    gone = np.unique(dropped_codes[dropped_codes >= 0])
    if 0 < len(gone) <= _FEW_SET_ASIDE:  # a comparison pass each, stopping at the first hit
        gone = gone[[not _occurs(codes, code) for code in gone]]
    elif len(gone):
        gone = gone[~np.isin(gone, codes, kind="table" if len(codes) else None)]
    if not len(gone):
        return s
    used = np.ones(len(cat.categories), dtype=bool)
    used[gone] = False
    new_pos = np.append(np.cumsum(used) - 1, -1).astype(codes.dtype)
    return pd.Series(
        pd.Categorical.from_codes(new_pos[codes], categories=cat.categories[used], validate=False),
        index=s.index,
        name=s.name,
    )


#: Up to this many kept rows the pandera post-check runs on the whole table; above
#: it, on an evenly spaced sample (every input row has already passed the vectorised
#: row checks; this check guards our own output's structure and dtypes, and costs
#: ~2 s on 20M events otherwise).
SCHEMA_CHECK_FULL_ROWS = 2_000_000
SCHEMA_CHECK_SAMPLE_ROWS = 200_000


def _schema_sample(frame: pd.DataFrame) -> pd.DataFrame:
    if len(frame) <= SCHEMA_CHECK_FULL_ROWS:
        return frame
    rows = np.linspace(0, len(frame) - 1, SCHEMA_CHECK_SAMPLE_ROWS).astype(np.int64)
    return frame.iloc[rows]


def _schema_backends_without_hypothesis() -> None:
    """Register pandera's pandas backends without importing ``hypothesis``.

    Pandera registers its backends on the first ``validate`` and then imports its
    data-synthesis strategies, which import ``hypothesis`` (and its pytest and trio
    plugins) whenever it is installed: 1-2 s on every load, for a feature trialcast
    never uses. Hiding ``hypothesis`` during that one import keeps the checks and
    drops the cost; when a process has already imported it (tests), nothing changes.
    """
    if "hypothesis" in sys.modules:
        return
    sys.modules["hypothesis"] = None  # type: ignore[assignment]  # import -> ImportError
    try:
        import pandera.backends.pandas.builtin_checks  # noqa: F401
    finally:
        del sys.modules["hypothesis"]


#: From this many rows on, the kept rows' columns are copied on threads.
_THREADED_MASK_ROWS = 1_000_000


def _kept_rows(frame: pd.DataFrame, ok: np.ndarray, threads: int | None = None) -> pd.DataFrame:
    """``frame[ok]``, column by column on the numpy values (categoricals on their codes).

    ``DataFrame.__getitem__`` with a mask builds a 64-bit row index and runs
    pandas' general take on every column (seconds on 20M events when a single row
    is quarantined); a boolean mask on each column's own array is one pass.
    The numpy masks run on ``threads`` threads, a column each (numpy releases the
    GIL); by default one per usable core from ``_THREADED_MASK_ROWS`` rows on, else
    one. 20M events, 4 columns, 2 cores, fresh processes: 0.11-0.81 -> 0.08-0.32 s.
    """
    if not frame.columns.is_unique:
        return frame[ok]
    columns: dict[object, object] = {}
    arrays: dict[object, np.ndarray] = {}  # numpy arrays to mask: codes, numbers, timestamps
    for col in frame.columns:
        s = frame[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            arrays[col] = np.asarray(s.array.codes)
        elif isinstance(s.dtype, np.dtype):  # numbers, naive timestamps: the ndarray itself
            arrays[col] = s.to_numpy(copy=False)
        else:
            columns[col] = s.array[ok]
    if threads is None and len(frame) < _THREADED_MASK_ROWS:
        threads = 1
    kept = thread_map(lambda values: values[ok], list(arrays.values()), threads)
    for name, values in zip(arrays, kept, strict=True):
        dtype = frame[name].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            columns[name] = pd.Categorical.from_codes(values, dtype=dtype, validate=False)
        else:
            columns[name] = values
    return pd.DataFrame({col: columns[col] for col in frame.columns}, copy=False)


def _finish(ledger: RowLedger, canon: pd.DataFrame) -> pd.DataFrame:
    """Kept rows in canonical form: all contract columns (missing optional ones empty),
    contract columns first, unused categories dropped, schema checked."""
    table = ledger.table
    ok = ledger.ok
    out = (canon if ok.all() else _kept_rows(canon, ok)).reset_index(drop=True)
    n = len(out)
    for col in CONTRACT_COLUMNS[table]:
        if col in out:
            continue
        if col in TIMESTAMP_COLUMNS[table]:
            out[col] = np.full(n, _NAT)
        elif col in TEXT_COLUMNS[table]:
            empty = pd.Index([], dtype="str")
            out[col] = pd.Categorical.from_codes(np.full(n, -1, dtype=np.int8), categories=empty)
        else:
            out[col] = np.full(n, np.nan)
    if not ok.all():
        for col in TEXT_COLUMNS[table]:
            if isinstance(out[col].dtype, pd.CategoricalDtype) and col in canon:
                dropped = np.asarray(canon[col].array.codes)[~ok]
                out[col] = _drop_unused_categories(out[col], dropped)
    extras = [c for c in out.columns if c not in CONTRACT_COLUMNS[table]]
    out = out[[*CONTRACT_COLUMNS[table], *extras]]
    _schema_backends_without_hypothesis()
    try:
        CANONICAL_SCHEMAS[table].validate(_schema_sample(out), lazy=True)
    except SchemaErrors as exc:  # a bug here, not bad input: fail loudly
        raise AssertionError(f"validated {table} break the canonical schema:\n{exc}") from exc
    return out


# --------------------------------------------------------------------------- tables
def _check_accounts(raw: pd.DataFrame, fmt: str | None) -> tuple[RowLedger, pd.DataFrame]:
    require_columns("accounts", raw)
    ledger = RowLedger("accounts", raw)
    canon = _common_checks(ledger, raw.copy(deep=False), fmt)
    late = (canon["trial_end"] < canon["trial_start"]).to_numpy()
    ledger.quarantine(
        late, "trial_end_before_start", "trial_end",
        example=_pair_example(raw, late, "trial_start", "trial_end"),
    )  # fmt: skip
    flag_duplicates(ledger, canon)
    ok = ledger.ok
    dup_id = np.zeros(len(raw), dtype=bool)
    dup_id[np.flatnonzero(ok)] = canon["account_id"][ok].duplicated().to_numpy()
    ledger.quarantine(dup_id, "duplicate_account_id", "account_id")
    for col in MONEY_COLUMNS:
        if col in canon:
            num, not_num, reformatted = to_number_read_as_written(raw[col])
            negative = (num < 0).to_numpy()
            ledger.repaired(reformatted, "number_format", col)
            ledger.repaired(not_num, "not_a_number", col)
            ledger.repaired(negative, "negative_money", col)
            canon[col] = num.mask(negative)
    return ledger, canon


ACCOUNT_DATES = ("trial_start", "converted_at", "churned_at")  # trial_end may lie ahead


def _check_account_dates(
    ledger: RowLedger,
    canon: pd.DataFrame,
    limit: pd.Timestamp | None,
    rules: ValidationRules,
    outcomes_dated: tuple[str, ...] = ("converted_at", "churned_at"),
) -> None:
    """Account dates get the checks events get, and none changes a label silently.

    A trial starting after the export is quarantined. An outcome (``converted_at``,
    ``churned_at``) after the export is not known at the export: it is emptied and
    reported (the account stays, as the export would have seen it), unless its date
    was placed by a yes/no flag (not in ``outcomes_dated``): a flag in the export
    is known there, whatever date stands in for it. An outcome long before the
    trial started is implausible: the account is quarantined.
    """
    start = canon["trial_start"]
    if limit is not None:
        ledger.quarantine((start > limit).to_numpy(), "after_export", "trial_start")
        for col in outcomes_dated:
            if col in canon:
                late = (canon[col] > limit).to_numpy()
                ledger.repaired(late, "after_export", col)
                canon[col] = canon[col].mask(late)
    earliest = start - pd.Timedelta(days=rules.max_days_before_trial)
    for col in ("converted_at", "churned_at"):
        if col in canon:
            ledger.quarantine((canon[col] < earliest).to_numpy(), "before_trial", col)


def _pair_example(raw: pd.DataFrame, mask: np.ndarray, first: str, second: str) -> str:
    if not mask.any():
        return ""
    pos = int(np.flatnonzero(mask)[0])
    return (
        f"row {pos}: {first} {describe_value(raw[first].iloc[pos])}, "
        f"{second} {describe_value(raw[second].iloc[pos])}"
    )


def _normalised_text(text: pd.Series) -> pd.Series:
    return text.str.strip().str.lower().str.replace(" ", "_").str.replace("-", "_")


def normalise_choice(
    s: pd.Series, allowed: tuple[str, ...]
) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """A column of choices (``direction``, ``channel``) in canonical spelling.

    Returns the values stripped, lower-cased, spaces and hyphens as ``_`` (``str``,
    null where not one of ``allowed``), the mask of rows not in ``allowed`` (nulls
    included) and the mask of rows whose text the spelling changed. A categorical
    column is normalised on its categories and spread to the rows by its codes: at
    20M events the 900,000 messages' 2-6 distinct values, not 900,000 strings
    (0.31 s -> ~0.01 s); the result is the one the rows' text gives.
    """
    if not isinstance(s.dtype, pd.CategoricalDtype):
        text = s.astype("str")
        norm = _normalised_text(text)
        invalid = ~norm.isin(allowed).to_numpy()
        return norm.where(~invalid), invalid, (norm != text).to_numpy()
    text = pd.Series(s.cat.categories).astype("str")
    norm = _normalised_text(text)
    bad = ~norm.isin(allowed).to_numpy()
    codes = np.asarray(s.array.codes)
    invalid = np.append(bad, True)[codes]  # code -1: a null, not allowed
    changed = np.append((norm != text).to_numpy(), True)[codes]
    values = pd.Index(norm.where(~bad), dtype="str").take(codes, allow_fill=True)
    return pd.Series(values, index=s.index, name=s.name), invalid, changed


def _check_communications(raw: pd.DataFrame, fmt: str | None) -> tuple[RowLedger, pd.DataFrame]:
    require_columns("communications", raw)
    ledger = RowLedger("communications", raw)
    canon = _common_checks(ledger, raw.copy(deep=False), fmt)
    for col, allowed in (("direction", DIRECTIONS), ("channel", CHANNELS)):
        norm, invalid, changed = normalise_choice(canon[col], allowed)
        if (invalid & ledger.ok).any():
            example = f"{ledger.example(invalid & ledger.ok, col)}; allowed: {', '.join(allowed)}"
            ledger.quarantine(invalid, "invalid_value", col, example=example)
        ledger.repaired(changed & ~invalid, "normalised_case", col)
        canon[col] = norm
    if "sentiment" in canon:
        num, not_num = to_number(raw["sentiment"])
        outside = ((num < -1) | (num > 1)).to_numpy()
        ledger.repaired(not_num, "not_a_number", "sentiment")
        ledger.repaired(outside, "out_of_range", "sentiment")
        canon["sentiment"] = num.mask(outside)
    flag_duplicates(ledger, canon)
    return ledger, canon


def _latest(columns: list[tuple[pd.Series, np.ndarray]]) -> pd.Timestamp | None:
    """The latest timestamp among the kept rows of each (column, kept mask); None if none.

    On the int64 nanoseconds, where NaT is the smallest value: no masked copies of
    20M timestamps and no pandas reduction (which copies its input).
    """
    nat = np.iinfo(np.int64).min
    latest = nat
    for column, kept in columns:
        nanos = np.asarray(column.to_numpy(copy=False)).view(np.int64)
        if len(nanos):
            latest = max(latest, int(np.max(nanos, where=kept, initial=nat)))
    return None if latest == nat else pd.Timestamp(latest)


def _export_time(
    rules: ValidationRules, latest: pd.Timestamp | None
) -> tuple[pd.Timestamp | None, str]:
    """The export time and where it came from (config, or latest event capped at now)."""
    if rules.export_time is not None:
        parsed, bad = parse_timestamps(pd.Series([rules.export_time], dtype="str"))
        if bad.any():
            raise InputError(
                f"validation.export_time: cannot parse {rules.export_time!r}; "
                "use ISO 8601, e.g. '2024-05-01T00:00:00Z'"
            )
        return pd.Timestamp(parsed.iloc[0]), "from validation.export_time"
    if latest is None:
        return None, "no valid events"
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    if latest > now:
        return now, "now (the latest event is in the future)"
    return pd.Timestamp(latest), "the latest event or account date"


def derive_accounts_from_events(events: pd.DataFrame, trial_days: int) -> pd.DataFrame:
    """Accounts for companies that hand over events only.

    Each account's trial starts at its first event and ends ``trial_days`` later;
    label columns (``converted_at``, ``deal_value``, ``mrr``, ``churned_at``) are
    empty, so such data can be scored and explored but not trained on.

    Args:
        events: canonical events (parsed timestamps, no null account ids).
        trial_days: trial length, ``config.trial.default_trial_days``.
    """
    codes, uniques = value_codes(events["account_id"])
    ts = events["timestamp"].to_numpy()
    first = pd.Series(ts[codes >= 0]).groupby(codes[codes >= 0]).min()
    start = first.to_numpy().astype("datetime64[ns]")
    n = len(first)
    accounts = pd.DataFrame(
        {
            "account_id": pd.Series(np.asarray(uniques)[first.index.to_numpy()], dtype="str"),
            "trial_start": start,
            "trial_end": start + np.timedelta64(trial_days, "D"),
            "converted_at": np.full(n, _NAT),
            "deal_value": np.full(n, np.nan),
            "mrr": np.full(n, np.nan),
            "churned_at": np.full(n, _NAT),
        }
    )
    return accounts.sort_values("account_id", ignore_index=True)


def _relate_to_accounts(
    ledger: RowLedger, canon: pd.DataFrame, accounts: pd.DataFrame, quarantined_ids: pd.Index
) -> np.ndarray:
    """Quarantine rows whose account is unknown; return each row's account trial_start."""
    codes, uniques = value_codes(canon["account_id"])
    position = pd.Index(accounts["account_id"].astype(object)).get_indexer(uniques.astype(object))
    known = np.append(position >= 0, True)
    was_quarantined = np.append(uniques.astype(object).isin(quarantined_ids.astype(object)), False)
    ledger.quarantine(was_quarantined[codes] & ~known[codes], "account_quarantined", "account_id")
    ledger.quarantine(~known[codes], "unknown_account", "account_id")
    starts = accounts["trial_start"].to_numpy().astype("datetime64[ns]")
    per_unique = np.where(
        position >= 0, starts[np.maximum(position, 0)] if len(starts) else _NAT, _NAT
    )
    return np.append(per_unique, _NAT)[codes]


def validate_tables(
    events: pd.DataFrame,
    accounts: pd.DataFrame,
    communications: pd.DataFrame | None,
    *,
    rules: ValidationRules,
    timestamp_format: dict[str, str | None] | None = None,
) -> tuple[Tables, ValidationReport]:
    """Check raw contract tables, repair or quarantine bad rows, return canonical tables.

    Args:
        events, accounts, communications: raw frames with contract column names.
        rules: plausibility limits (event window, export time).
        timestamp_format: per table, the ``strftime`` format of its text timestamps.

    Raises:
        InputError: a required column is missing (nothing can be validated then).
    """
    return validate_raw_tables(
        events, accounts, communications, rules, timestamp_format or {}, None
    )


def _lacks_trial_end(accounts: pd.DataFrame) -> bool:
    return "trial_end" not in accounts.columns and "trial_start" in accounts.columns


def trial_end_from_length(accounts: pd.DataFrame, fmt: str | None, days: int) -> pd.DataFrame:
    """Accounts whose export has no ``trial_end``: each trial ends ``days`` after it starts.

    Exports of one plan often have a single trial length and no end column; the
    config's ``[trial].default_trial_days`` says how long it is. A start that cannot
    be parsed leaves the end empty, and the row is set aside for its start.
    """
    start, _ = parse_timestamps(accounts["trial_start"], fmt)
    return accounts.assign(trial_end=start + pd.Timedelta(days=days))


def validate_raw_tables(
    events: pd.DataFrame,
    accounts: pd.DataFrame | None,
    communications: pd.DataFrame | None,
    rules: ValidationRules,
    formats: dict[str, str | None],
    derive_trial_days: int | None,
    *,
    flagged_conversions: bool = False,
) -> tuple[Tables, ValidationReport]:
    """``validate_tables`` for the loaders and the Dask partitions: with ``accounts=None``
    accounts are derived from the events (trials of ``derive_trial_days``), and each
    table's timestamp format is given in ``formats``. ``flagged_conversions``: the
    ``converted_at`` dates were placed at trial end from a yes/no flag
    (``features.conversion_flag``); they are not observed moments, so they do not
    move the export time (a trial still running at the export would push it to its
    end, and every event type would look as if it stopped arriving), and one after
    the export is kept (the flag was in the export)."""
    notes: list[str] = []
    if accounts is not None and derive_trial_days and _lacks_trial_end(accounts):
        accounts = trial_end_from_length(accounts, formats.get("accounts"), derive_trial_days)
        notes.append(
            f"accounts: no trial_end column; trial_end = trial_start + {derive_trial_days} "
            "days ([trial].default_trial_days)"
        )
    for name, frame in (
        ("events", events),
        ("accounts", accounts),
        ("communications", communications),
    ):
        if frame is not None:  # fail fast, before any work on a big events table
            require_columns(name, frame)
    ev = RowLedger("events", events)
    ev_canon = _common_checks(ev, events.copy(deep=False), formats.get("events"))
    flag_duplicates(ev, ev_canon)

    ledgers = [ev]
    quarantined_ids = pd.Index([], dtype="str")
    if accounts is not None:
        acc_ledger, acc_canon = _check_accounts(accounts, formats.get("accounts"))
        ledgers.append(acc_ledger)

    ts = ev_canon["timestamp"]
    seen = [(ts, ev.ok)]
    if accounts is not None:  # account dates count too; messages never move "now"
        observed = [c for c in ACCOUNT_DATES if not (flagged_conversions and c == "converted_at")]
        seen += [(acc_canon[c], acc_ledger.ok) for c in observed if c in acc_canon]
    export, origin = _export_time(rules, _latest(seen))
    limit = None
    if export is not None:
        limit = export + pd.Timedelta(days=rules.max_days_after_export)
        ev.quarantine((ts > limit).to_numpy(), "after_export", "timestamp")
        notes.append(
            f"export time {export} ({origin}); events, messages and account dates after "
            f"{limit} are implausible"
        )
    if accounts is not None:
        dated = ("churned_at",) if flagged_conversions else ("converted_at", "churned_at")
        _check_account_dates(acc_ledger, acc_canon, limit, rules, dated)
        acc_out = _finish(acc_ledger, acc_canon)
        bad_ids = pd.Index(acc_canon["account_id"][~acc_ledger.ok].dropna().astype(object))
        quarantined_ids = bad_ids.difference(pd.Index(acc_out["account_id"].astype(object)))

    if accounts is None:
        trial_days = derive_trial_days or 14
        acc_out = derive_accounts_from_events(
            ev_canon[ev.ok][["account_id", "timestamp"]], trial_days
        )
        notes.append(
            f"accounts: derived from events ({len(acc_out):,} accounts; trial_start = first "
            f"event, trial_end = + {trial_days} days; no labels)"
        )

    ev_start = _relate_to_accounts(ev, ev_canon, acc_out, quarantined_ids)
    earliest = ev_start - np.timedelta64(int(rules.max_days_before_trial * 86400e9), "ns")
    ev.quarantine(ts.to_numpy() < earliest, "before_trial", "timestamp")

    comm_out = None
    if communications is not None:
        comm_ledger, comm_canon = _check_communications(
            communications, formats.get("communications")
        )
        comm_start = _relate_to_accounts(comm_ledger, comm_canon, acc_out, quarantined_ids)
        comm_ts = comm_canon["timestamp"]
        if limit is not None:
            comm_ledger.quarantine((comm_ts > limit).to_numpy(), "after_export", "timestamp")
        comm_earliest = comm_start - np.timedelta64(
            int(rules.max_days_before_trial * 86400e9), "ns"
        )
        comm_ledger.quarantine(comm_ts.to_numpy() < comm_earliest, "before_trial", "timestamp")
        ledgers.append(comm_ledger)
        comm_out = _finish(comm_ledger, comm_canon)

    ev_out = _finish(ev, ev_canon)
    tables = Tables(events=ev_out, accounts=acc_out, communications=comm_out, export_at=export)
    kept = {"events": len(ev_out), "accounts": len(acc_out)}
    if comm_out is not None:
        kept["communications"] = len(comm_out)
    problems: list[Problem] = [p for lg in ledgers for p in lg.problems]
    report = ValidationReport(
        problems=problems,
        rows_in={"events": len(events), "accounts": len(accounts) if accounts is not None else len(acc_out),
                 **({"communications": len(communications)} if communications is not None else {})},
        rows_kept=kept,
        quarantine={lg.table: lg.quarantined_frame() for lg in ledgers},
        notes=notes,
    )  # fmt: skip
    if "accounts" not in report.quarantine:
        report.quarantine["accounts"] = acc_out.iloc[:0].assign(
            _row=pd.Series(dtype="int64"), _reason=pd.Series(dtype="str")
        )
    report.check_balance()
    return tables, report
