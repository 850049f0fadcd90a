"""Observed conversion of each lead type, beside the seed's stated chance.

The seed states a chance per lead type (Golden Leads 90%, Heartbreakers 5%...).
On a real company those numbers can be far off, and a "let go" playbook on a type
that converts above the company's average sends sales away from money. At
training time, ``compute_persona_rates`` counts, per type, the finished trials of
the training window and how many converted, with a Wilson 95% interval
(``scipy.stats.binomtest``), and says in words where the data contradicts the
type's playbook. The rates travel with the model (``FeatureSpec.persona_rates``)
so the sales view and the score output can show them, and the persona baseline
predicts observed rates instead of stated ones (``build_persona_baseline``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from features.personas import (
    PERSONAS,
    PersonaLevels,
    assign_personas,
    fading_log_ratio,
    observed_rate_note,
    persona_columns,
)

RATE_COLUMNS = (
    "persona",
    "trials",
    "converted",
    "observed",
    "low",
    "high",
    "stated",
    "note",
)


def last_snapshot_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Each account's latest training snapshot: its trial as last seen before it ended
    or converted (one row per trial, with its label)."""
    order = frame.sort_values(["account_id", "snapshot_day"], kind="mergesort")
    return order.drop_duplicates("account_id", keep="last")


def reference_rows(frame: pd.DataFrame, *, max_missing: float = 0.05) -> pd.DataFrame:
    """The training rows of one snapshot, the latest at which (almost) no converter had
    converted yet: one row per trial, typed before the outcome could shape it.

    Types read from each trial's *last* snapshot would depend on the label (a trial
    that converts on day 9 is last seen on day 7, a lost one at trial end), which
    biases every observed rate; a common snapshot before conversions start does not.
    ``max_missing`` is the share of converters allowed to have converted already.
    The chosen snapshot is in ``attrs["snapshot"]``.
    """
    days = frame.groupby("snapshot", observed=True)["snapshot_day"].median().sort_values()
    converters = set(frame.loc[frame["label"] == 1, "account_id"])
    chosen = str(days.index[0])
    for name in days.index:
        rows = frame[frame["snapshot"] == name]
        present = converters & set(rows["account_id"])
        if converters and 1 - len(present) / len(converters) > max_missing:
            break
        chosen = str(name)
    out = frame[frame["snapshot"].astype(str) == chosen]
    out.attrs["snapshot"] = chosen
    return out


def fading_defined(trials: pd.DataFrame) -> bool:
    """Whether any row is far enough into its trial for fading (and so Fizzlers) to be
    told: fading compares the last seven days with the week before (8+ days)."""
    return bool((~np.isnan(fading_log_ratio(persona_columns(trials)))).any())


def compute_persona_rates(
    trials: pd.DataFrame, levels: PersonaLevels | None = None, *, confidence: float = 0.95
) -> pd.DataFrame:
    """Observed conversion per lead type with a Wilson interval (columns ``RATE_COLUMNS``).

    Args:
        trials: one row per finished trial with its features and ``label``
            (``last_snapshot_rows`` of the conversion training set).
        levels: the company's lead-type levels (default: the seed's).
        confidence: interval level.

    Types with no trial get NaN rates and the note "no trial". Fizzlers are typed
    by fading, which needs a week of activity before the last seven days: when no
    row is that far into its trial (a reference snapshot at day 7, say), the note
    says so instead of suggesting the company has no such trials.
    """
    personas = assign_personas(trials, levels).astype(str).to_numpy()
    table = persona_rate_table(personas, trials["label"].to_numpy(), confidence=confidence)
    if len(trials) and not fading_defined(trials):
        at = str(trials.attrs.get("snapshot", "")) or "these rows"
        unknown = (table["persona"] == "Fizzlers") & (table["trials"] == 0)
        table.loc[unknown, "note"] = (
            f"not typed at {at}: fading needs 8+ days of activity, so no observed rate"
        )
    return table


def compute_observed_persona_rates(
    frame: pd.DataFrame, levels: PersonaLevels | None = None, *, confidence: float = 0.95
) -> pd.DataFrame:
    """``compute_persona_rates`` at the reference snapshot (``reference_rows``), with
    Fizzlers measured where they can be typed.

    Fading needs 8+ days of activity, so at an earlier reference snapshot nobody is a
    Fizzler. Their rate then comes from the first snapshot at which fading is defined,
    among the trials still open there (a conditional rate, which is the one sales need:
    an account only looks like a Fizzler after its first week, and is still open),
    and the note says at which snapshot. ``attrs["snapshot"]`` is the reference.
    """
    reference = reference_rows(frame)
    table = compute_persona_rates(reference, levels, confidence=confidence)
    table.attrs["snapshot"] = reference.attrs["snapshot"]
    row = table.index[table["persona"] == "Fizzlers"]
    if not len(row) or fading_defined(reference):
        return table
    days = frame.groupby("snapshot", observed=True)["snapshot_day"].median().sort_values()
    for name in days.index[days >= 8]:
        rows = frame[frame["snapshot"].astype(str) == str(name)]
        if not fading_defined(rows):
            continue
        later = compute_persona_rates(rows, levels, confidence=confidence).set_index("persona")
        fizz = later.loc["Fizzlers"]
        for col in ("trials", "converted", "observed", "low", "high"):
            table.loc[row[0], col] = fizz[col]
        where = f"typed at {name} among the trials still open then (fading needs 8+ days)"
        table.loc[row[0], "note"] = f"{where}; {fizz['note']}" if fizz["note"] else where
        break
    return table


def persona_rate_table(
    personas: np.ndarray, labels: np.ndarray, *, confidence: float = 0.95
) -> pd.DataFrame:
    """``compute_persona_rates`` for lead types already assigned (one per trial)."""
    personas = np.asarray(personas, dtype=str)
    labels = np.asarray(labels, dtype=np.float64)
    base = float(labels.mean()) if len(labels) else float("nan")
    rows = []
    for name, persona in PERSONAS.items():
        mask = personas == name
        n, k = int(mask.sum()), int(labels[mask].sum())
        if n == 0:
            rows.append((name, 0, 0, np.nan, np.nan, np.nan, persona.stated_chance, "no trial"))
            continue
        ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
        rate = k / n
        note = observed_rate_note(name, rate, ci.low, ci.high, persona.stated_chance, base)
        rows.append((name, n, k, rate, ci.low, ci.high, persona.stated_chance, note))
    return pd.DataFrame(rows, columns=list(RATE_COLUMNS))


def rates_to_dict(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """The table as ``{persona: {observed, low, high, trials, stated}}`` (for the spec)."""
    out: dict[str, dict[str, float]] = {}
    for row in table.to_dict("records"):
        if row["trials"] == 0:
            continue
        out[str(row["persona"])] = {
            k: float(row[k]) for k in ("observed", "low", "high", "trials", "stated")
        }
    return out


def rates_to_metrics(table: pd.DataFrame) -> dict[str, float]:
    """MLflow metrics ``persona_observed_<type>`` / ``persona_trials_<type>``."""
    out: dict[str, float] = {}
    for row in table.to_dict("records"):
        slug = str(row["persona"]).lower().replace(" ", "_")
        if row["trials"]:
            out[f"persona_observed_{slug}"] = float(row["observed"])
        out[f"persona_trials_{slug}"] = float(row["trials"])
    return out


def build_observed_persona_baseline(
    train: pd.DataFrame, frame: pd.DataFrame, levels: PersonaLevels | None = None
) -> np.ndarray:
    """The persona baseline on observed rates: each row of ``frame`` gets the training
    conversion rate of rows with its lead type at the same snapshot (falling back to
    its type over all snapshots, then to the base rate, for unseen combinations).

    Fitted on ``train`` only, so it is calibrated in the large where the stated
    chances are not, and it stays the heuristic the model must beat.
    """
    base = float(train["label"].mean())
    fitted = train.assign(_p=assign_personas(train, levels).astype(str).to_numpy())
    scored = frame.assign(_p=assign_personas(frame, levels).astype(str).to_numpy())
    by_type = fitted.groupby("_p")["label"].mean()
    out = scored["_p"].map(by_type).astype(float)
    if "snapshot" in train.columns and "snapshot" in frame.columns:
        cells = fitted.groupby(["snapshot", "_p"], observed=True)["label"].agg(["mean", "size"])
        rate = cells.loc[cells["size"] >= 20, "mean"]
        keys = pd.MultiIndex.from_arrays([scored["snapshot"].astype(str), scored["_p"]])
        both = pd.Series(rate.reindex(keys).to_numpy(), index=scored.index)
        out = both.where(both.notna(), out)
    return out.fillna(base).to_numpy(dtype=np.float64)
