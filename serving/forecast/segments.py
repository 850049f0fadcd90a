"""Forecast segments from the company config: any account column, text or numeric bands.

Nothing is assumed about the columns a company has: the breakdowns are
``[forecast] segments`` of the config, or by default persona, the firmographics
``size_column`` and the categorical firmographics columns. A numeric column with
``bands`` is cut at those edges; values that are not numbers (an export with
text bands like ``"51-200"``) keep their own text instead of becoming "unknown".
"""

from __future__ import annotations

import itertools
from collections.abc import Collection

import numpy as np
import pandas as pd

from features.config import CompanyConfig, SegmentSpec
from features.quarantine import InputError

#: Bands of the size column when the config names one and gives no bands.
DEFAULT_SIZE_BANDS = [10.0, 50.0, 200.0, 1000.0]
PERSONA = "persona"


class SegmentColumnError(InputError, KeyError):
    """A forecast breakdown the config names has no column in the data."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def configured_segments(
    config: CompanyConfig, available: Collection[str] | None = None
) -> list[SegmentSpec]:
    """The forecast breakdowns of ``config`` (see the module docstring for the default;
    the size bands end at ``firmographics.big_company_size``).

    ``available`` (the columns of the scores and the accounts table) drops default
    breakdowns whose column the export lacks: an export without ``company_size`` is
    forecast without size bands. Breakdowns the config names are kept (a missing one
    is then an error that names it).
    """
    if config.forecast.segments is not None:
        return list(config.forecast.segments)
    firmo = config.firmographics
    specs = [SegmentSpec(column=PERSONA)]
    if firmo.size_column:
        specs.append(
            SegmentSpec(
                column=firmo.size_column,
                # The top band is the config's "big logo" size.
                bands=sorted({*DEFAULT_SIZE_BANDS[:-1], float(firmo.big_company_size)}),
                name=f"{firmo.size_column}_band",
            )
        )
    specs += [SegmentSpec(column=c) for c in firmo.categorical if c != firmo.size_column]
    if available is not None:
        present = set(available)
        specs = [spec for spec in specs if spec.column in present]
    return specs


def _band_labels(edges: list[float]) -> list[str]:
    def fmt(x: float) -> str:
        return f"{x:g}"

    labels = [f"<={fmt(edges[0])}"]
    labels += [f"{fmt(a)}-{fmt(b)}" for a, b in itertools.pairwise(edges)]
    return [*labels, f">{fmt(edges[-1])}"]


def band_values(values: pd.Series, edges: list[float]) -> pd.Series:
    """Numeric values cut at ``edges``; text that is not a number kept as is; missing ``unknown``."""
    number = pd.to_numeric(values, errors="coerce")
    cut = pd.cut(number, bins=[-np.inf, *edges, np.inf], labels=_band_labels(edges), right=True)
    out = cut.astype("string")
    text = values.astype("string")
    out = out.where(number.notna(), text)
    return out.fillna("unknown")


def add_segment_columns(
    frame: pd.DataFrame, accounts: pd.DataFrame, specs: list[SegmentSpec]
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """``frame`` (one row per account) with one text column per segment, and their names.

    Columns come from ``frame`` itself when present (``persona``), else from the
    accounts table by ``account_id``.

    Raises:
        SegmentColumnError: a configured column is in neither, naming it.
    """
    out = frame.copy()
    acc = accounts.assign(account_id=accounts["account_id"].astype(str)).drop_duplicates(
        "account_id"
    )
    acc = acc.set_index("account_id")
    ids = out["account_id"].astype(str)
    names = []
    for spec in specs:
        if spec.column in frame.columns:
            raw = frame[spec.column]
        elif spec.column in acc.columns:
            raw = pd.Series(acc[spec.column].reindex(ids).to_numpy(), index=out.index)
        else:
            raise SegmentColumnError(
                f"forecast.segments: column {spec.column!r} is neither in the scores nor in "
                "the accounts table; add it to the accounts or take it out of "
                "[[forecast.segments]] in the config"
            )
        name = spec.name or spec.column
        if spec.bands:
            out[name] = band_values(raw, list(spec.bands))
        else:
            out[name] = raw.astype("string").fillna("unknown")
        names.append(name)
    return out, tuple(names)
