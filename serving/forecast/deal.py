"""Deal value of an open trial as an estimate, from what is known at ``as_of`` only.

An open trial has no deal yet, so its value is uncertain. The estimate, best
source first:

1. **the CRM quote** (optional ``quote`` column of the accounts table), corrected
   by how quotes compared with the deals actually won before ``as_of``: a
   least-squares line ``log(won) = a[group] + b log(quote)`` over quoted wins
   (one intercept per ``group_column`` value, e.g. plan: see ``QuoteLine``) gives
   the expected value ``exp(a[group] + b log(quote) + s^2 / 2)`` and the spread
   ``s`` (the residual sd). Fitted on won deals, it is the value *given the trial
   converts* (what revenue needs: big accounts convert less often) and it
   shrinks noisy quotes towards typical deals. At least ``MIN_QUOTED_WINS``
   quoted wins are needed, else the quote is taken as is, with the spread of
   won deals;
2. **the mean won deal of the account's group** (``group_column``, e.g. plan) among
   deals won before ``as_of``, with that group's log-spread;
3. the mean of all deals won before ``as_of``.

Nothing won at or after ``as_of`` is used (the backtest relies on it). Every
estimate carries ``deal_value_log_sd``: the forecast turns it into value
variance (``value_variance``) and widens P10 / P90 with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

QUOTE_COLUMN = "quote"
#: Fewer quoted past wins than this and quotes are taken at face value.
MIN_QUOTED_WINS = 20
#: Fewer wins than this in a group and the group falls back to all wins.
MIN_GROUP_WINS = 10


class DealValueError(ValueError):
    """No deal won before ``as_of`` and no quote: no value can be estimated."""


def _log_sd(x: np.ndarray) -> float:
    x = x[np.isfinite(x) & (x > 0)]
    return float(np.std(np.log(x), ddof=1)) if len(x) > 1 else 0.0


@dataclass(frozen=True)
class QuoteLine:
    """``log(won) = a[group] + b[group] log(quote) + c log(size)``, fitted on quoted wins.

    An intercept and slope per group with at least ``MIN_GROUP_WINS`` quoted
    wins (``OTHER`` for the rest and for groups never seen), an optional shared
    size slope ``c`` (0 without a size column), ``sd`` the residual log-spread. Why per group: deal sizes differ by plan far more than within
    one, so a single pooled line pulls every quote towards the overall typical
    deal: small-plan quotes come out too high and big-plan quotes too low (on
    the demo, starter deals won +21%, business -6% before this split).
    """

    slopes: dict[object, float]
    intercepts: dict[object, float]
    sd: float
    size_slope: float = 0.0

    def predict(
        self, log_quote: np.ndarray, groups: np.ndarray, log_size: np.ndarray | None = None
    ) -> np.ndarray:
        """Expected log deal value given the log quote, the group (and log size)."""
        key = [g if g in self.intercepts else OTHER for g in groups]
        a = np.array([self.intercepts[g] for g in key], dtype=float)
        b = np.array([self.slopes[g] for g in key], dtype=float)
        out = a + b * np.asarray(log_quote, dtype=float)
        if log_size is not None:
            out = out + self.size_slope * np.asarray(log_size, dtype=float)
        return out


#: Intercept of groups with too few quoted wins (and of accounts without a group).
OTHER = "__other__"


def fit_quote_line(
    log_quote: np.ndarray,
    log_won: np.ndarray,
    groups: np.ndarray,
    log_size: np.ndarray | None = None,
) -> QuoteLine | None:
    """Least squares of ``log_won`` on ``log_quote`` per group (intercept and slope),
    plus one shared slope on ``log_size`` when given (company size: within a plan,
    big companies buy bigger deals and convert less often, so the quote alone
    under-values the big ones a forecast weighs by their chance).

    Returns ``None`` with fewer than ``MIN_QUOTED_WINS`` quoted wins or no spread in
    the quotes (quotes are then taken at face value).
    """
    n = len(log_quote)
    if n < MIN_QUOTED_WINS or np.ptp(log_quote) <= 0:
        return None
    named = pd.Series(groups, dtype="object").where(pd.notna(groups), OTHER)
    counts = named.value_counts()
    keys = named.where(named.map(counts).ge(MIN_GROUP_WINS), OTHER).to_numpy(dtype=object)
    names = list(dict.fromkeys(keys))
    dummies = [(keys == g).astype(float) for g in names]
    extra = [] if log_size is None else [np.asarray(log_size, dtype=float)]
    design = np.column_stack(dummies + [d * log_quote for d in dummies] + extra)
    coef, *_ = np.linalg.lstsq(design, log_won, rcond=None)
    resid = log_won - design @ coef
    sd = float(np.sqrt(resid @ resid / max(n - design.shape[1], 1)))
    k = len(names)
    intercepts = {g: float(c) for g, c in zip(names, coef[:k], strict=True)}
    slopes = {g: float(c) for g, c in zip(names, coef[k : 2 * k], strict=True)}
    size_slope = float(coef[2 * k]) if extra else 0.0
    if OTHER not in intercepts:  # unseen groups: one line over all quoted wins
        rest = log_won - size_slope * (extra[0] if extra else 0.0)
        b1, a1 = np.polyfit(log_quote, rest, 1)
        intercepts[OTHER], slopes[OTHER] = float(a1), float(b1)
    return QuoteLine(slopes=slopes, intercepts=intercepts, sd=sd, size_slope=size_slope)


def estimate_deal_values(
    accounts: pd.DataFrame,
    account_ids: pd.Series | np.ndarray | list[str],
    as_of: pd.Timestamp,
    *,
    group_column: str | None = "plan",
    size_column: str | None = None,
    default_value: float | None = None,
    on_missing: Literal["raise", "empty"] = "raise",
) -> pd.DataFrame:
    """Expected deal value of each open trial from information known at ``as_of``.

    Args:
        accounts: the accounts table (``account_id``, ``converted_at``,
            ``deal_value`` of won deals; optional ``quote`` and ``group_column``).
        account_ids: the open trials to value.
        as_of: the moment of the estimate: only deals won before it are used.
        group_column: accounts column to take group means by (skipped if absent).
        size_column: numeric accounts column of company size (the config's
            ``firmographics.size_column``); its log enters the quote line. Skipped
            if absent or not numeric; missing sizes take the quoted wins' median.
        default_value: the config's ``[forecast].default_deal_value``: the value of
            a trial nothing else can value (source ``default``, no spread).
        on_missing: what to do when a trial still has no value: ``raise``
            (``DealValueError``) or ``empty`` (its value stays empty, source
            ``none``, and ``out.attrs["note"]`` says why).

    Returns:
        Indexed like ``account_ids``: ``deal_value`` (expected), ``deal_value_log_sd``
        (spread of the actual around it, in log units) and ``deal_value_source``
        (``quote``, ``group``, ``all``, ``default`` or ``none``).

    Raises:
        DealValueError: a trial has no quote, no deal with a value was won before
            ``as_of``, no default is configured and ``on_missing="raise"``.
    """
    moment = pd.Timestamp(as_of)
    acc = accounts.assign(account_id=accounts["account_id"].astype(str)).drop_duplicates(
        "account_id"
    )
    acc = acc.set_index("account_id")
    ids = pd.Index(pd.Series(account_ids).astype(str))
    conv = pd.to_datetime(acc["converted_at"]) if "converted_at" in acc else None
    value = (
        pd.to_numeric(acc["deal_value"], errors="coerce")
        if "deal_value" in acc
        else pd.Series(np.nan, index=acc.index)
    )
    won = value.notna() & (value > 0)
    won &= conv.notna() & (conv < moment) if conv is not None else False
    won_values = value[won].to_numpy(dtype=float)
    overall_mean = float(np.mean(won_values)) if len(won_values) else np.nan
    overall_sd = _log_sd(won_values)

    out = pd.DataFrame(index=ids)
    out["deal_value"] = overall_mean
    out["deal_value_log_sd"] = overall_sd
    out["deal_value_source"] = "all"
    if group_column and group_column in acc.columns:
        groups = acc[group_column].astype("string")
        by = pd.DataFrame({"g": groups[won], "v": value[won]}).groupby("g")["v"]
        stats = pd.DataFrame(
            {
                "n": by.size(),
                "mean": by.mean(),
                "sd": by.apply(lambda s: _log_sd(s.to_numpy(dtype=float))),
            }
        )
        stats = stats[stats["n"] >= MIN_GROUP_WINS]
        g = groups.reindex(ids)
        has = g.isin(stats.index).fillna(False).to_numpy(dtype=bool)
        out.loc[has, "deal_value"] = stats["mean"].reindex(g[has]).to_numpy()
        out.loc[has, "deal_value_log_sd"] = stats["sd"].reindex(g[has]).to_numpy()
        out.loc[has, "deal_value_source"] = "group"
    if QUOTE_COLUMN in acc.columns:
        quote = pd.to_numeric(acc[QUOTE_COLUMN], errors="coerce")
        quoted_wins = won & quote.notna() & (quote > 0)
        q = quote.reindex(ids)
        has_q = (q.notna() & (q > 0)).to_numpy(dtype=bool)
        levels = (
            acc[group_column].astype("string")
            if group_column and group_column in acc.columns
            else pd.Series(pd.NA, index=acc.index, dtype="string")
        )
        log_size = _log_size(acc, size_column, quoted_wins)
        line = fit_quote_line(
            np.log(quote[quoted_wins].to_numpy(dtype=float)),
            np.log(value[quoted_wins].to_numpy(dtype=float)),
            levels[quoted_wins].to_numpy(dtype=object),
            None if log_size is None else log_size[quoted_wins].to_numpy(dtype=float),
        )
        log_q = np.log(q[has_q].to_numpy(dtype=float))
        if line is not None:
            lv = levels.reindex(ids)[has_q].to_numpy(dtype=object)
            ls = None if log_size is None else log_size.reindex(ids)[has_q].to_numpy(dtype=float)
            estimate = np.exp(line.predict(log_q, lv, ls) + 0.5 * line.sd * line.sd)
            sd = line.sd
        else:
            sd, estimate = overall_sd, np.exp(log_q)
        out.loc[has_q, "deal_value"] = estimate
        out.loc[has_q, "deal_value_log_sd"] = sd
        out.loc[has_q, "deal_value_source"] = "quote"
    gap = out["deal_value"].isna().to_numpy()
    if gap.any() and default_value is not None:
        out.loc[gap, "deal_value"] = float(default_value)
        out.loc[gap, "deal_value_log_sd"] = 0.0
        out.loc[gap, "deal_value_source"] = "default"
    elif gap.any():
        wins = int((conv.notna() & (conv < moment)).sum()) if conv is not None else 0
        note = no_value_message(out.index[gap], moment, wins, has_column="deal_value" in acc)
        if on_missing == "raise":
            raise DealValueError(note)
        out.loc[gap, "deal_value_source"] = "none"
        out.attrs["note"] = note
    return out


def no_value_message(missing: pd.Index, as_of: pd.Timestamp, wins: int, *, has_column: bool) -> str:
    """Why ``missing`` open trials have no deal value, in true words, and the fixes."""
    if not has_column:
        why = "the accounts table has no deal_value column"
    elif wins:
        why = f"{wins:,} deal(s) were won before {as_of} but none has a deal_value above 0"
    else:
        why = f"no deal was won before {as_of}"
    return (
        f"accounts.deal_value: {len(missing):,} open trial(s) have no deal value (e.g. "
        f"{missing[0]!r}): {why}, and they have no quote. Set [forecast].default_deal_value "
        "in the config, or add a deal_value (won deals) or quote column to the accounts"
    )


def _log_size(acc: pd.DataFrame, size_column: str | None, fitted: pd.Series) -> pd.Series | None:
    """log(1 + size) per account, gaps filled with the ``fitted`` rows' median; None
    without a usable numeric size column."""
    if not size_column or size_column not in acc.columns:
        return None
    size = pd.to_numeric(acc[size_column], errors="coerce")
    if size[fitted].notna().sum() < MIN_QUOTED_WINS or (size < 0).any():
        return None
    logs = np.log1p(size)
    return logs.fillna(float(logs[fitted].median()))


def value_variance(expected: np.ndarray, log_sd: np.ndarray) -> np.ndarray:
    """Variance of each deal value around its estimate (log-normal with that log-sd)."""
    m = np.asarray(expected, dtype=float)
    s = np.nan_to_num(np.asarray(log_sd, dtype=float), nan=0.0)
    return m * m * np.expm1(s * s)
