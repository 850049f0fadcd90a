"""Generated companies that differ from the demo: vocabulary, scale, trial length, lags.

``make_company`` draws a company with the demo generator's options, renames every
event type (so nothing can lean on the demo's words) and writes a matching config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from features.config import CompanyConfig, demo_config_text, load_config
from features.demo.generator import EVENT_NAMES, DemoData, generate_demo_data, write_demo_data
from features.demo.latent import DemoConversionLags
from features.loaders import load_tables
from features.tables import Tables


@dataclass
class Company:
    """A generated company: its config, loaded tables and the generator's truth."""

    config: CompanyConfig
    tables: Tables
    demo: DemoData
    root: Path


def renamed(name: str) -> str:
    """The other company's word for a demo event type."""
    return "ev_" + name.lower().replace(" ", "_")


#: Two company shapes unlike the demo (30-day trials, 30-day window): a one-week
#: trial decided within 12 days, and a three-week trial decided over 45 days.
SHAPES: dict[str, dict] = {
    "short": dict(
        trial_days=7,
        window_days=12,
        lags=DemoConversionLags(in_trial_share=0.2, a_after=1.5, b_after=1.5),
    ),
    "long": dict(
        trial_days=21,
        window_days=45,
        lags=DemoConversionLags(in_trial_share=0.5, a_after=1.0, b_after=2.0),
    ),
}


def make_company(
    root: Path,
    *,
    n_accounts: int,
    seed: int,
    trial_days: int,
    window_days: int,
    lags: DemoConversionLags,
    start: str = "2025-09-01",
    export_time: str = "2026-05-01",
    transform: Callable[[DemoData], DemoData] | None = None,
) -> Company:
    """Generate, rename the vocabulary, write Parquet plus config, load as a user would.

    ``transform`` changes the generated company before renaming (a scenario of
    ``features.demo.scenarios``, a variant of ``features.demo.variants``).
    """
    demo = generate_demo_data(
        n_accounts,
        seed=seed,
        trial_days=(trial_days,),
        conversion_window_days=window_days,
        conversion_lags=lags,
        start=start,
        export_time=export_time,
    )
    if transform is not None:
        demo = transform(demo)
    events = demo.tables.events.copy()
    events["event"] = events["event"].astype(str).map(renamed)
    tables = Tables(
        events=events, accounts=demo.tables.accounts, communications=demo.tables.communications
    )
    write_demo_data(DemoData(tables=tables, truth=demo.truth), root)
    text = demo_config_text()
    for name in EVENT_NAMES:
        text = text.replace(f'"{name}"', f'"{renamed(name)}"')
    text = text.replace("conversion_window_days = 30", f"conversion_window_days = {window_days}")
    text = text.replace("default_trial_days = 14", f"default_trial_days = {trial_days}")
    (root / "trialcast.toml").write_text(text)
    config = load_config(root / "trialcast.toml")
    params = {**config.model.lightgbm, "num_threads": 1, "learning_rate": 0.1}
    model = config.model.model_copy(
        update={"lightgbm": params, "num_boost_round": 150, "early_stopping_rounds": 20}
    )
    config = config.model_copy(update={"model": model})
    return Company(config=config, tables=load_tables(config).tables, demo=demo, root=root)


def make_trained_company(root: Path, uri: str, **spec) -> Company:
    """``make_company(root, **spec)`` with both kinds trained into ``uri`` and made champions.

    The models are judged by the gate as usual; ``make_champions`` then points
    ``champion`` at them (a serving test needs both models served).
    """
    from factories import make_champions

    from features.build import FeatureBuilder
    from training.train import RecordTarget, train_models

    company = make_company(root, **spec)
    builder = FeatureBuilder.from_tables(company.tables, company.config)
    train_models(company.config, builder, target=RecordTarget(tracking_uri=uri))
    make_champions(company.config, uri)
    return company


def train_champions(
    co: Company, root: Path, trained_at: str, kinds: tuple[str, ...] = ("conversion",)
) -> tuple[str, dict]:
    """Train ``kinds`` on the data known at ``trained_at`` (the tables cut there, as an
    export then) into ``root/mlflow.db``; its URI and each kind's champion (or None)."""
    import pandas as pd

    from training.tracking import use_tracking_uri
    from training.train import RecordTarget, train_models
    from trialcast.backtest import truncate_tables
    from trialcast.monitoring.champion import load_champion

    uri = f"sqlite:///{root}/mlflow.db"
    moment = pd.Timestamp(trained_at)
    train_models(
        co.config,
        truncate_tables(co.tables, moment),
        export_time=moment,
        kinds=kinds,
        target=RecordTarget(tracking_uri=uri, project_dir=root),
    )
    with use_tracking_uri(uri) as client:
        return uri, {kind: load_champion(client, co.config, kind) for kind in kinds}
