"""One leak judgement for training, milestones and `check-config --data`.

An event after which nearly every account converts is an outcome wherever it
falls: here a step logged days before each payment, after trial end for most
converters of a short trial (neither "present during the trial" nor "within a day
of converted_at" catches it). Two generated companies unlike the demo: one
leaking, one clean; and two feature-table companies with label-like columns.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.build import FeatureBuilder
from features.config import CompanyConfig, demo_config_text, load_demo_config, parse_config
from features.demo import variants
from features.demo.generator import DemoData, generate_demo_data, write_demo_data
from features.demo.latent import DemoConversionLags
from features.demo.table_company import TableCompany, generate_table_company
from features.leaks import scan_leaks
from training.milestones import discover_milestones
from trialcast.cli import app

LEAK = "Quote Accepted"
#: (trial days, window days, lags, seed, vocabulary prefix, leaking)
COMPANIES = {
    "leaking": (7, 14, DemoConversionLags(in_trial_share=0.15, a_after=1.5, b_after=1.5), 21, "q_"),
    "clean": (21, 45, DemoConversionLags(in_trial_share=0.5, a_after=1.0, b_after=2.0), 22, "z_"),
}


def _company(kind: str) -> tuple[DemoData, CompanyConfig]:
    trial, window, lags, seed, prefix = COMPANIES[kind]
    demo = generate_demo_data(
        900, seed=seed, trial_days=(trial,), conversion_window_days=window, conversion_lags=lags
    )
    demo = variants.rename_events(demo, prefix=prefix)
    if kind == "leaking":
        demo = variants.event_before_payment(demo, LEAK, days_before=4, seed=seed)
    raw = load_demo_config().model_dump(mode="json")
    raw["trial"]["conversion_window_days"] = window
    return demo, parse_config(raw)


@pytest.fixture(scope="module")
def leaking() -> tuple[DemoData, CompanyConfig]:
    return _company("leaking")


@pytest.fixture(scope="module")
def clean() -> tuple[DemoData, CompanyConfig]:
    return _company("clean")


def test_event_days_before_payment_is_flagged_with_its_statistics(leaking, clean) -> None:
    demo, cfg = leaking
    acc = demo.tables.accounts
    paid = acc["converted_at"].notna()
    after_end = (acc["converted_at"] - pd.Timedelta(days=4) > acc["trial_end"])[paid].mean()
    assert after_end > 0.3  # for many converters the event falls after the trial
    scan = scan_leaks(demo.tables, cfg)
    assert scan.excluded_events == [LEAK]
    (leak,) = scan.events
    assert "wherever it falls in time" in leak.reason and "converters" in leak.reason
    assert leak.share_converters > 0.9 and leak.share_others < 0.01
    clean_demo, clean_cfg = clean
    quiet = scan_leaks(clean_demo.tables, clean_cfg)
    assert quiet.events == [] and quiet.excluded_events == [] and quiet.converters > 100


def test_allow_events_keeps_it_on_purpose(leaking) -> None:
    demo, cfg = leaking
    raw = cfg.model_dump(mode="json")
    raw["leakage"]["allow_events"] = [LEAK]
    scan = scan_leaks(demo.tables, parse_config(raw))
    assert scan.excluded_events == [] and [e.event for e in scan.events] == [LEAK]
    assert "kept (allow_events)" in scan.message()


def test_milestones_name_it_with_the_scan_statistics(leaking) -> None:
    demo, cfg = leaking
    builder = FeatureBuilder.from_tables(demo.tables, cfg)
    found = discover_milestones(cfg, builder)
    assert LEAK in found.excluded and LEAK not in set(found.candidates["event"])
    (line,) = [x for x in found.left_out if x.startswith(LEAK)]
    assert "the leak scan:" in line and "converters" in line


runner = CliRunner()


def _text(result: object) -> str:
    return " ".join(str(getattr(result, "output", "")).split())


@pytest.mark.parametrize("kind", ["leaking", "clean"])
def test_check_config_data_judges_like_training(kind: str, tmp_path: Path, request) -> None:
    demo, cfg = request.getfixturevalue(kind)
    write_demo_data(demo, tmp_path)
    window = cfg.trial.conversion_window_days
    path = tmp_path / "trialcast.toml"
    head, _, _ = demo_config_text().partition("[[pql.conditions]]")
    body = head.replace("conversion_window_days = 30", f"conversion_window_days = {window}")
    # the demo's milestone and core event names do not exist in this vocabulary
    path.write_text(body.split("[activation]")[0])
    result = runner.invoke(app, ["check-config", str(path), "--data"])
    out = _text(result)
    assert "Traceback" not in out
    if kind == "leaking":
        assert f"LEAK? event '{LEAK}'" in out and "wherever it falls in time" in out
        assert f'exclude_events = ["{LEAK}"]' in out  # brackets kept
    else:
        assert "LEAK?" not in out and "leak scan: no outcome-like event" in out


def _write_table_company(
    root: Path, frame: pd.DataFrame, company: TableCompany, columns: dict
) -> Path:
    """The table as CSV and a config declaring ``columns`` (name -> type) as features."""
    root.mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "trials.csv", index=False, date_format="%Y-%m-%dT%H:%M:%S")
    lines = [
        'company = "table company"',
        "[sources.features]",
        'path = "trials.csv"',
        "[feature_table]",
        'account_columns = ["trial_start", "trial_end", "converted_at", "deal_value"]',
    ]
    for name, kind in columns.items():
        lines += [f"[feature_table.columns.{name}]", f'type = "{kind}"', f'label = "{name}"']
    lines += [
        "[trial]",
        "conversion_window_days = 45",
        f"default_trial_days = {company.trial_days}",
        "[validation]",
        f'export_time = "{company.export.isoformat()}"',
    ]
    path = root / "trialcast.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "company",
    [
        TableCompany(n_trials=300, seed=31, trial_days=10, lag_days=(1, 25)),
        TableCompany(n_trials=260, seed=32, trial_days=21, lag_days=(3, 40), span_days=400),
    ],
)
def test_check_config_data_names_label_like_table_columns(
    company: TableCompany, tmp_path: Path
) -> None:
    frame = generate_table_company(company)
    converted = frame["converted_at"].notna()
    frame["converted"] = converted.astype(int)
    frame["outcome"] = converted.map({True: "won", False: "lost"})
    kinds = {"seats": "numeric", "pipelines_run": "numeric", "days_to_convert": "numeric"}
    kinds |= {"converted": "numeric", "outcome": "categorical"}
    path = _write_table_company(tmp_path / "leaking", frame, company, kinds)
    result = runner.invoke(app, ["check-config", str(path), "--data"])
    out = _text(result)
    assert "Traceback" not in out
    for col in ("days_to_convert", "converted", "outcome"):
        assert f"LEAK? feature 'table_{col}'" in out, out
    assert "'table_seats'" not in out and "'table_pipelines_run'" not in out

    clean = generate_table_company(replace(company, leaks=False))
    path = _write_table_company(tmp_path / "clean", clean, company, {"seats": "numeric"})
    out = _text(runner.invoke(app, ["check-config", str(path), "--data"]))
    assert "LEAK?" not in out and "no outcome-like event" in out, out
