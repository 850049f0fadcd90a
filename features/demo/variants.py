"""Companies that differ from the demo: transforms of generated demo data.

The product's judgements (leak guards, promotion, milestones, lead types, the
forecast) must hold on companies it was not built on. Each function here takes a
``DemoData`` (tables + truth) and returns a new one; they compose, and none
mutates its input::

    demo = generate_demo_data(2_000, seed=3, trial_days=(21,), conversion_window_days=10)
    company = rename_events(scale_activity(demo, 0.5), prefix="ev_")
    config = rename_config_events(load_demo_config(), event_mapping(demo, prefix="ev_"))

What each transform is for:

- ``rename_events``: another event vocabulary (nothing may hard-code the demo's);
- ``scale_activity``: quieter or busier products (thin or duplicated event rows);
- ``no_signal``: outcomes shuffled across accounts, independent of behaviour
  (nothing should be promoted; the true probability is the base rate);
- ``hindsight_event``: an outcome event recorded with hindsight, logged from
  signup only for accounts that later paid, on several days so that it also
  inflates the aggregates (event totals, active days, distinct types);
- ``event_before_payment``: an outcome step logged days before each payment
  (after trial end when payment comes weeks later);
- ``attribute_for_converters``: an account column filled mostly for converters
  (a "current" attribute such as a plan chosen at purchase);
- ``small_company``: a random subset of accounts (a few hundred trials);
- ``delay_conversions``: conversions (and churns) later by some days.

The truth table is kept consistent where the transform changes what is true
(``no_signal`` flattens the true probabilities; ``small_company`` keeps the
chosen accounts' rows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from features.config import CompanyConfig, parse_config
from features.demo.generator import DemoData
from features.tables import Tables

__all__ = [
    "attribute_for_converters",
    "delay_conversions",
    "event_before_payment",
    "event_mapping",
    "hindsight_event",
    "no_signal",
    "rename_config_events",
    "rename_events",
    "scale_activity",
    "small_company",
]

_OUTCOME_COLUMNS = ("converted_at", "churned_at", "mrr")


def _with(demo: DemoData, truth: pd.DataFrame | None = None, **tables: object) -> DemoData:
    new_tables = replace(demo.tables, **tables)  # type: ignore[arg-type]
    new_truth = demo.truth if truth is None else truth
    if truth is not None:
        new_truth.attrs = dict(demo.truth.attrs)
    return DemoData(tables=new_tables, truth=new_truth)


def _export(demo: DemoData) -> pd.Timestamp:
    return pd.Timestamp(demo.truth.attrs.get("export_time", demo.tables.export_time()))


def event_mapping(demo: DemoData, *, prefix: str = "ev_") -> dict[str, str]:
    """Old event name -> a new neutral name (``<prefix>0``, ``<prefix>1``... by frequency).

    Names carry no meaning afterwards, so no code can rely on the demo's words.
    """
    counts = demo.tables.events["event"].astype(str).value_counts()
    return {str(name): f"{prefix}{i}" for i, name in enumerate(counts.index)}


def rename_events(
    demo: DemoData, mapping: Mapping[str, str] | None = None, *, prefix: str = "ev_"
) -> DemoData:
    """The same company speaking another event vocabulary.

    Args:
        demo: the data to transform.
        mapping: old name -> new name; names not in it are kept. Default:
            ``event_mapping(demo, prefix=prefix)``.
        prefix: prefix of the generated names when ``mapping`` is omitted.
    """
    names = dict(mapping) if mapping is not None else event_mapping(demo, prefix=prefix)
    events = demo.tables.events.copy()
    old = events["event"].astype(str)
    events["event"] = pd.Categorical(old.map(lambda e: names.get(e, e)).to_numpy(dtype=object))
    return _with(demo, events=events)


def rename_config_events(config: CompanyConfig, mapping: Mapping[str, str]) -> CompanyConfig:
    """``config`` with every event name (milestones, core, invites, exclusions) renamed."""
    raw = config.model_dump(mode="json")

    def ren(names: list[str]) -> list[str]:
        return [mapping.get(n, n) for n in names]

    for step in raw["activation"]["milestones"]:
        step["events"] = ren(step["events"])
    raw["engagement"]["core_events"] = ren(raw["engagement"]["core_events"])
    raw["engagement"]["invite_events"] = ren(raw["engagement"]["invite_events"])
    if "leakage" in raw:
        raw["leakage"]["exclude_events"] = ren(raw["leakage"]["exclude_events"])
    return parse_config(raw, base_dir=config.base_dir, origin="renamed config")


def scale_activity(demo: DemoData, factor: float, *, seed: int = 0) -> DemoData:
    """A quieter (``factor < 1``: each event kept with that chance) or busier product.

    With ``factor > 1`` every event is repeated ``floor(factor)`` times, plus once
    more with the fractional part's chance, at the same timestamp.
    """
    if factor <= 0:
        raise ValueError("factor must be positive")
    rng = np.random.default_rng(seed)
    events = demo.tables.events
    whole = int(np.floor(factor))
    repeats = np.full(len(events), whole, dtype=np.int64)
    repeats += rng.random(len(events)) < (factor - whole)
    scaled = events.iloc[np.repeat(np.arange(len(events)), repeats)].reset_index(drop=True)
    return _with(demo, events=scaled)


def _shuffled(
    demo: DemoData,
    acc: pd.DataFrame,
    truth: pd.DataFrame,
    order: np.ndarray,
    converted: np.ndarray,
    new_conv: pd.Series,
) -> DemoData:
    """The company with outcome permutation ``order`` applied: each account takes the
    drawn account's conversion (at ``new_conv``), deal value and months paid; what
    falls after the export is unknown to it; the truth's chances become the base rate."""
    export = _export(demo)
    paid_for = (truth["churned_at_true"] - truth["converted_at_true"]).to_numpy()[order]
    new_churn = new_conv + pd.Series(paid_for)
    known_conv = (new_conv < export).to_numpy()
    acc["converted_at"] = new_conv.where(known_conv).to_numpy()
    acc["churned_at"] = new_churn.where(new_churn < export).to_numpy()
    acc["deal_value"] = acc["deal_value"].to_numpy()[order]
    acc["mrr"] = np.where(known_conv, (acc["deal_value"] / 12.0).round(2), np.nan)
    truth["converted"] = converted
    truth["converted_at_true"] = new_conv.to_numpy()
    truth["churned_at_true"] = new_churn.to_numpy()
    rate = float(converted.mean())
    for col in [c for c in truth.columns if c.startswith("p_convert")]:
        truth[col] = rate
    return _with(demo, truth=truth, accounts=acc)


def no_signal(demo: DemoData, *, seed: int = 0) -> DemoData:
    """Outcomes shuffled across accounts: labels independent of every behaviour.

    Each account gets another account's outcome (converted or not, deal value,
    months until churn). A conversion happens after the trial, uniformly within
    the conversion window, so not even the snapshot day carries signal (every
    snapshot of an account has the same label). Outcomes that would fall after
    the export are dropped, as an export would not know them. The truth's
    probabilities become the base rate, the true ceiling of such a company.
    """
    rng = np.random.default_rng(seed)
    acc = demo.tables.accounts.copy()
    window = float(demo.truth.attrs.get("conversion_window_days", 30))
    truth = demo.truth.set_index("account_id").reindex(acc["account_id"]).reset_index()
    truth.attrs = dict(demo.truth.attrs)
    order = rng.permutation(len(acc))
    converted = truth["converted"].to_numpy(dtype=bool)[order]
    lag = pd.to_timedelta(rng.uniform(0.0, window, len(acc)), unit="D")
    new_conv = pd.Series(acc["trial_end"].to_numpy() + lag.to_numpy()).where(converted)
    return _shuffled(demo, acc, truth, order, converted, new_conv)


def shuffled_outcomes(demo: DemoData, *, seed: int = 0) -> DemoData:
    """Outcomes shuffled across accounts, each with its own realistic timing.

    Unlike ``no_signal`` (conversions uniform after the trial), each account takes
    another account's whole outcome *and its lag*: a conversion that came 3 days
    before that trial's end comes 3 days before this trial's end, one that came
    weeks after comes weeks after. Labels carry no behaviour, but when accounts
    convert is as real as the generator's timing law: snapshots late in the window
    convert less, and a model can beat one pooled base rate by learning that
    calendar alone. The truth's probabilities become the base rate.
    """
    rng = np.random.default_rng(seed)
    acc = demo.tables.accounts.copy()
    truth = demo.truth.set_index("account_id").reindex(acc["account_id"]).reset_index()
    truth.attrs = dict(demo.truth.attrs)
    order = rng.permutation(len(acc))
    end = pd.Series(acc["trial_end"].to_numpy())
    start = pd.Series(acc["trial_start"].to_numpy())
    lag = pd.Series(truth["converted_at_true"].to_numpy() - end.to_numpy()).to_numpy()[order]
    converted = truth["converted"].to_numpy(dtype=bool)[order]
    new_conv = (end + pd.Series(lag)).where(pd.Series(converted))
    new_conv = new_conv.where(new_conv.isna() | (new_conv > start), start + pd.Timedelta(days=1))
    return _shuffled(demo, acc, truth, order, converted, new_conv)


def hindsight_event(
    demo: DemoData,
    name: str = "Subscription Activated",
    *,
    share_converters: float = 0.97,
    share_others: float = 0.01,
    days: int = 4,
    per_day: int = 5,
    seed: int = 0,
) -> DemoData:
    """An outcome event recorded with hindsight: logged from signup for accounts that paid.

    Chosen accounts (``share_converters`` of those that converted by the export,
    ``share_others`` of the rest) get ``per_day`` events called ``name`` on each
    of their first ``days`` trial days, an hour after the day starts, so the
    event also inflates event totals, active days and distinct event types.
    """
    rng = np.random.default_rng(seed)
    acc = demo.tables.accounts
    converter = acc["converted_at"].notna().to_numpy()
    share = np.where(converter, share_converters, share_others)
    chosen = np.flatnonzero(rng.random(len(acc)) < share)
    steps = np.arange(days * per_day)
    minutes = (steps // per_day) * 24 * 60 + 60 + steps % per_day
    offsets = (minutes * 60 * 10**9).astype("timedelta64[ns]")
    ids = np.repeat(acc["account_id"].astype(str).to_numpy()[chosen], len(steps))
    starts = acc["trial_start"].to_numpy().astype("datetime64[ns]")[chosen]
    times = np.repeat(starts, len(steps)) + np.tile(offsets, len(chosen))
    added = pd.DataFrame({"account_id": ids, "event": name, "timestamp": times})
    return _add_events(demo, added)


def event_before_payment(
    demo: DemoData,
    name: str = "Quote Accepted",
    *,
    days_before: float = 3.0,
    share_converters: float = 0.97,
    share_others: float = 0.003,
    seed: int = 0,
) -> DemoData:
    """An outcome step logged ``days_before`` each payment: a quote accepted, a PO signed.

    Chosen converters (``share_converters``) get one event ``name`` that many days
    before ``converted_at`` (after trial end when they pay weeks later, inside the
    trial when they pay early); ``share_others`` of the rest get it two days after
    their trial ended. Almost everyone who reaches it pays, whenever it falls.
    """
    rng = np.random.default_rng(seed)
    acc = demo.tables.accounts
    conv = acc["converted_at"]
    chosen = rng.random(len(acc)) < np.where(conv.notna(), share_converters, share_others)
    when = (conv - pd.Timedelta(days=days_before)).where(
        conv.notna(), acc["trial_end"] + pd.Timedelta(days=2)
    )
    when = when.where(when > acc["trial_start"], acc["trial_start"] + pd.Timedelta(hours=1))
    added = pd.DataFrame(
        {
            "account_id": acc["account_id"].astype(str).to_numpy()[chosen],
            "event": name,
            "timestamp": when.to_numpy().astype("datetime64[ns]")[chosen],
        }
    )
    return _add_events(demo, added)


def _add_events(demo: DemoData, added: pd.DataFrame) -> DemoData:
    """``demo`` with the ``added`` events (account_id, event, timestamp), time-ordered."""
    events = demo.tables.events
    if "user_id" in events.columns:
        added["user_id"] = None
    merged = pd.concat(
        [
            events.astype({c: object for c in ("account_id", "event", "user_id") if c in events}),
            added,
        ],
        ignore_index=True,
    )
    merged = merged[events.columns].sort_values("timestamp", kind="mergesort", ignore_index=True)
    for col in ("account_id", "event", "user_id"):
        if col in merged.columns:
            merged[col] = merged[col].astype("category")
    export = _export(demo)
    merged = merged[merged["timestamp"] < export].reset_index(drop=True)
    return _with(demo, events=merged)


def attribute_for_converters(
    demo: DemoData,
    column: str = "plan_tier",
    *,
    fill_converters: float = 0.85,
    fill_others: float = 0.05,
    levels: tuple[str, ...] = ("pro", "business"),
    seed: int = 0,
) -> DemoData:
    """An account column filled mostly for converters (known only after purchase).

    Its values are random levels; only *whether* it is filled separates the
    label, which is what a "current" attribute (plan, seats, mrr...) looks like.
    """
    rng = np.random.default_rng(seed)
    acc = demo.tables.accounts.copy()
    converter = acc["converted_at"].notna().to_numpy()
    filled = rng.random(len(acc)) < np.where(converter, fill_converters, fill_others)
    values = np.asarray(levels, dtype=object)[rng.integers(0, len(levels), len(acc))]
    acc[column] = pd.Series(values, dtype="str").where(filled)
    return _with(demo, accounts=acc)


def mrr_rewritten_at_churn(demo: DemoData, value: float = 0.0) -> DemoData:
    """The export a CRM gives: a churned account's MRR set to ``value`` (0, or NaN).

    The MRR it paid while paying is gone; read at export, ``mrr`` now says who churned.
    """
    acc = demo.tables.accounts.copy()
    churned = acc["churned_at"].notna().to_numpy()
    acc["mrr"] = np.where(churned, value, acc["mrr"].to_numpy(dtype=np.float64))
    return _with(demo, accounts=acc)


def small_company(demo: DemoData, n_accounts: int = 200, *, seed: int = 0) -> DemoData:
    """A random ``n_accounts`` of the demo's accounts, with their events, messages and truth."""
    rng = np.random.default_rng(seed)
    acc = demo.tables.accounts
    if n_accounts >= len(acc):
        return demo
    keep_pos = np.sort(rng.choice(len(acc), n_accounts, replace=False))
    keep = pd.Index(acc["account_id"].astype(str).to_numpy()[keep_pos])

    def subset(frame: pd.DataFrame | None) -> pd.DataFrame | None:
        if frame is None:
            return None
        out = frame[frame["account_id"].astype(str).isin(keep)].reset_index(drop=True)
        for col in out.columns:
            if isinstance(out[col].dtype, pd.CategoricalDtype):
                out[col] = out[col].cat.remove_unused_categories()
        return out

    truth = demo.truth[demo.truth["account_id"].astype(str).isin(keep)].reset_index(drop=True)
    truth.attrs = {**demo.truth.attrs, "n_accounts": n_accounts}
    tables = Tables(
        events=subset(demo.tables.events),  # type: ignore[arg-type]
        accounts=acc.iloc[keep_pos].reset_index(drop=True),
        communications=subset(demo.tables.communications),
    )
    return DemoData(tables=tables, truth=truth)


def delay_conversions(demo: DemoData, days: float) -> DemoData:
    """Conversions and churns ``days`` later (a slower buying process).

    Outcomes pushed past the export are dropped from the accounts (still in the
    truth). Product events are unchanged, so usage after the old conversion
    date stays: this models slower paperwork, not slower users.
    """
    shift = pd.Timedelta(days=days)
    acc = demo.tables.accounts.copy()
    export = _export(demo)
    truth = demo.truth.copy()
    for col, true_col in (("converted_at", "converted_at_true"), ("churned_at", "churned_at_true")):
        truth[true_col] = truth[true_col] + shift
        moved = truth.set_index("account_id")[true_col].reindex(acc["account_id"]).to_numpy()
        acc[col] = pd.Series(moved).where(pd.Series(moved) < export).to_numpy()
    acc["mrr"] = acc["mrr"].where(acc["converted_at"].notna())
    return _with(demo, truth=truth, accounts=acc)
