"""Fingerprints of everything the feature step produces, to prove a rewrite changed nothing.

``fingerprints`` writes two generated companies unlike the demo to Parquet (one
with an outcome event logged days before payment, one with a few rows that
validation must set aside), loads them as a user would, and hashes the spec, the
kept and quarantined row counts, the account view and both training sets (float
columns as sums compared within a relative 1e-9: the last bit of a float moves
between CPUs). The fingerprints of the code before the reading / leak-scan rewrite
(regenerated in this format at a00082b, whose features equal ae7c08f's) are stored in
``tests/data/feature_fingerprints.json``; ``python tests/features/feature_fingerprints.py OUT``
regenerates them (only when a change of features is intended).
Regenerated since: issue 21, session 8 (branch ``forecast4``), for the three weekend
timing inputs (``features.weekdays``): the only change was three added float columns
in every frame; every earlier column's sums were equal within ``FLOAT_RTOL``.
Again in issue 21, session 9, for the spec's ``activity_profile`` (the company's week):
only the two spec hashes changed; every frame is equal (the "per usual day" columns it
feeds are off by default, ``[engagement] usual_day_rates``).
Again in issue 21, session 11, for the snapshots in the last week of the conversion
window (``features.config.WINDOW_TAIL_DAYS``): only the trial training sets changed,
by the added ``end_<k>d`` rows; without them each set's hash equals the stored one.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from features.config import demo_config_text, load_config
from features.demo import variants
from features.demo.generator import generate_demo_data, write_demo_data

#: Float columns are compared to this relative tolerance, not bit for bit: numpy's
#: exp, log and sums take other SIMD paths on other CPUs (AVX-512 or not), which
#: moves the last bit of a float (seen: the same code, two machines, other hashes).
FLOAT_RTOL = 1e-9


def frame_hash(frame: pd.DataFrame) -> dict[str, object]:
    """Fingerprint of a frame: SHA-256 of its columns, dtypes, index, non-float values
    and float missing-value masks (exact), plus per float column its sum and a
    row-position-weighted sum (compared within ``FLOAT_RTOL``; row order matters)."""
    frame = frame.reset_index()
    floats = [c for c in frame.columns if pd.api.types.is_float_dtype(frame[c].dtype)]
    digest = hashlib.sha256()
    digest.update(json.dumps([str(c) for c in frame.columns]).encode())
    digest.update(json.dumps([str(t) for t in frame.dtypes]).encode())
    others = frame.drop(columns=floats)
    rows = pd.util.hash_pandas_object(others, index=False).to_numpy()
    digest.update(np.ascontiguousarray(rows).tobytes())
    weight = (np.arange(len(frame)) % 97 + 1).astype(np.float64)
    sums: dict[str, list[float]] = {}
    for col in floats:
        x = frame[col].to_numpy(dtype=np.float64)
        missing = np.isnan(x)
        digest.update(np.packbits(missing).tobytes())
        x = np.where(missing, 0.0, x)
        sums[str(col)] = [math.fsum(x), math.fsum(x * weight)]
    return {"exact": digest.hexdigest(), "floats": sums}


def same_fingerprints(got: dict, want: dict) -> list[str]:
    """Names whose fingerprints differ (exact parts exactly, floats within FLOAT_RTOL)."""
    bad = sorted(set(got) ^ set(want))
    for name in sorted(set(got) & set(want)):
        a, b = got[name], want[name]
        if isinstance(a, str) or isinstance(b, str):
            if a != b:
                bad.append(name)
            continue
        if a["exact"] != b["exact"] or set(a["floats"]) != set(b["floats"]):
            bad.append(name)
            continue
        for col, values in a["floats"].items():
            if not np.allclose(values, b["floats"][col], rtol=FLOAT_RTOL, atol=1e-9):
                bad.append(f"{name}:{col}")
    return bad


def _company(root: Path, kind: str) -> Path:
    if kind == "leaking":
        demo = generate_demo_data(
            700, seed=31, trial_days=(10,), conversion_window_days=25, export_time="2026-05-01"
        )
        demo = variants.rename_events(variants.scale_activity(demo, 1.5, seed=3), prefix="act_")
        demo = variants.hindsight_event(demo, name="Plan Activated", seed=3)
    else:
        demo = generate_demo_data(
            600, seed=17, trial_days=(21,), conversion_window_days=12, export_time="2026-05-01"
        )
        demo = variants.rename_events(demo, prefix="e")
    write_demo_data(demo, root)
    if kind == "dirty":  # rows validation must set aside: unknown account, bad time, duplicate
        ev = pd.read_parquet(root / "events.parquet")
        bad = ev.iloc[:3].copy()
        bad["account_id"] = ["nobody", bad["account_id"].iloc[1], bad["account_id"].iloc[2]]
        bad["timestamp"] = [bad["timestamp"].iloc[0], pd.NaT, bad["timestamp"].iloc[2]]
        pd.concat([ev, bad], ignore_index=True).to_parquet(root / "events.parquet")
    text = demo_config_text().replace("conversion_window_days = 30", "conversion_window_days = 20")
    (root / "trialcast.toml").write_text(text)
    return root


def fingerprints(root: Path) -> dict[str, object]:
    """Hashes of spec, row counts, account view and training sets of both companies."""
    from features.build import FeatureBuilder
    from features.loaders import load_tables
    from features.pipeline import build_account_view
    from features.snapshots import build_churn_training_set, build_trial_training_set

    out: dict[str, object] = {}
    for kind in ("leaking", "dirty"):
        folder = _company(root / kind, kind)
        config = load_config(folder / "trialcast.toml")
        loaded = load_tables(config)
        report = loaded.report
        out[f"{kind}/rows"] = json.dumps(
            {"kept": report.rows_kept, "in": report.rows_in}, sort_keys=True
        )
        builder = FeatureBuilder.from_tables(loaded.tables, config)
        # the config's hash changes with every new config section: not a feature change
        spec = replace(builder.spec, config_hash="")
        out[f"{kind}/spec"] = hashlib.sha256(spec.to_json().encode()).hexdigest()
        out[f"{kind}/view"] = frame_hash(
            build_account_view(builder, loaded.tables.export_time()).drop(columns=["playbook"])
        )
        out[f"{kind}/trial"] = frame_hash(build_trial_training_set(builder))
        out[f"{kind}/churn"] = frame_hash(build_churn_training_set(builder))
    return out


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        result = fingerprints(Path(tmp))
    Path(sys.argv[1]).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result, indent=2))
