"""Feature-building benchmark: trialcast's pipeline beside a hand-written DuckDB query.

Each measurement runs in a fresh child process so peak memory (``ru_maxrss``) is
that run's own. Both sides start from the same Parquet files and end with one
row per account in memory: trialcast reads, validates and builds its full feature
set; DuckDB runs one SQL query computing the same per-account aggregates
(counts, windows, distinct days / types / users, recency, decayed score, top-K
counts, milestone times, communication counts and tone).
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

#: Events per demo account (2,000-account probe of the generator, seed 1, 2026-12).
EVENTS_PER_ACCOUNT_GUESS = 230.094


def _ensure_data(n_events: int, work_dir: Path, console: Console) -> Path:
    """Demo data with about ``n_events`` events, generated once and reused."""
    from features.config import demo_config_text
    from features.demo.generator import generate_demo_data, write_demo_data

    folder = work_dir / f"events_{n_events}"
    if (folder / "events.parquet").exists():
        return folder
    ratio_file = work_dir / "events_per_account.json"
    # A work dir keeps the ratio it was sized with; a fresh one uses the generator's
    # measured ratio (no probe: on a fresh 1M run the probe cost a third of the time).
    ratio = EVENTS_PER_ACCOUNT_GUESS
    if ratio_file.exists():
        ratio = json.loads(ratio_file.read_text())["ratio"]
    n_accounts = max(100, round(n_events / ratio * 1.05))  # the probe ran a little low
    with console.status(f"Generating {n_accounts:,} accounts (~{n_events:,} events)..."):
        demo = generate_demo_data(n_accounts, seed=7)
        write_demo_data(demo, folder)
    (folder / "trialcast.toml").write_text(demo_config_text())
    return folder


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM; unlike ``ru_maxrss`` it is not
    inherited from the parent that spawned us)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child_trialcast(folder: Path) -> dict:
    """Read + validate + build every account's features at export time."""
    from features.build import FeatureBuilder
    from features.config import load_config
    from features.loaders import load_tables
    from features.pipeline import build_account_view

    t0 = time.perf_counter()
    config = load_config(folder / "trialcast.toml")
    loaded = load_tables(config)
    t1 = time.perf_counter()
    builder = FeatureBuilder.from_tables(loaded.tables, config)
    frame = build_account_view(builder, loaded.tables.export_time())
    t2 = time.perf_counter()
    return {
        "seconds": t2 - t0,
        "load_validate_s": t1 - t0,
        "features_s": t2 - t1,
        "events": builder.index.n_events,
        "rows": len(frame),
        "columns": frame.shape[1],
        "peak_mb": _peak_mb(),
        "top_events": builder.spec.top_event_types,
    }


def _sql_name(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def duckdb_reference_sql(folder: Path, top_events: list[str]) -> str:
    """The hand-written reference query: per-account aggregates at the same cutoffs as
    trialcast's account view (trial end, or the export time for running trials)."""
    from features.config import load_config

    cfg = load_config(folder / "trialcast.toml")
    core = ", ".join(_sql_name(e) for e in cfg.engagement.core_events) or "NULL"
    invite = ", ".join(_sql_name(e) for e in cfg.engagement.invite_events) or "NULL"
    half_life = cfg.engagement.decay_half_life_days
    counts = ",\n".join(
        f"  count(*) FILTER (WHERE e.event = {_sql_name(name)}) AS c{i}"
        for i, name in enumerate(top_events)
    )
    milestones = []
    for i, m in enumerate(cfg.activation.milestones):
        names = ", ".join(_sql_name(x) for x in m.events)
        milestones.append(
            f"  list_sort(list(e.ts) FILTER (WHERE e.event IN ({names})))[{m.min_count}] AS m{i}"
        )
    milestone_sql = ",\n".join(milestones)
    ev, acc, com = (str(folder / f"{t}.parquet") for t in ("events", "accounts", "communications"))
    return f"""
WITH cut AS (SELECT max(timestamp) AS t FROM read_parquet('{ev}')),
a AS (
  SELECT account_id, least(trial_end, cut.t) AS as_of
  FROM read_parquet('{acc}'), cut WHERE trial_start < cut.t
),
e AS (
  SELECT ev.account_id, ev.user_id, ev.event, ev.timestamp AS ts,
         epoch(a.as_of) - epoch(ev.timestamp) AS age
  FROM read_parquet('{ev}') ev JOIN a USING (account_id) WHERE ev.timestamp < a.as_of
),
f AS (
  SELECT e.account_id,
  count(*) AS events_all,
  count(*) FILTER (WHERE age < 7 * 86400) AS events_7d,
  count(*) FILTER (WHERE age < 28 * 86400) AS events_28d,
  count(*) FILTER (WHERE age >= 7 * 86400 AND age < 14 * 86400) AS events_prev_7d,
  count(DISTINCT floor(age / 86400)) AS active_days_all,
  count(DISTINCT floor(age / 86400)) FILTER (WHERE age < 7 * 86400) AS active_days_7d,
  count(DISTINCT e.event) AS distinct_types,
  count(*) FILTER (WHERE e.event IN ({core})) AS core_events,
  count(DISTINCT e.event) FILTER (WHERE e.event IN ({core})) AS core_used,
  count(*) FILTER (WHERE e.event IN ({invite})) AS invites,
  count(DISTINCT e.user_id) AS users_all,
  count(DISTINCT e.user_id) FILTER (WHERE age < 7 * 86400) AS users_7d,
  min(age) / 86400 AS recency_days,
  sum(exp(-ln(2) * age / 86400 / {half_life})) AS decayed,
{counts},
{milestone_sql}
  FROM e GROUP BY e.account_id
),
c AS (
  SELECT account_id,
    count(*) FILTER (WHERE direction = 'inbound') AS inbound,
    count(*) FILTER (WHERE direction = 'outbound') AS outbound,
    count(*) FILTER (WHERE channel = 'ticket') AS tickets,
    avg(sentiment) FILTER (WHERE direction = 'inbound') AS tone_mean,
    min(sentiment) FILTER (WHERE direction = 'inbound') AS tone_min
  FROM read_parquet('{com}') m JOIN a USING (account_id) WHERE m.timestamp < a.as_of
  GROUP BY account_id
)
SELECT a.account_id, f.*, c.* FROM a LEFT JOIN f USING (account_id) LEFT JOIN c USING (account_id)
"""


def child_duckdb(folder: Path) -> dict:
    """Run the reference query with DuckDB on all cores."""
    import duckdb

    top = json.loads((folder / "top_events.json").read_text())
    t0 = time.perf_counter()
    con = duckdb.connect()
    frame = con.execute(duckdb_reference_sql(folder, top)).df()
    t1 = time.perf_counter()
    return {
        "seconds": t1 - t0,
        "rows": len(frame),
        "columns": frame.shape[1],
        "peak_mb": _peak_mb(),
    }


def _run_child(kind: str, folder: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "trialcast.bench.features", kind, str(folder)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_feature_benchmark(
    sizes: list[int], *, repeats: int, work_dir: Path, console: Console
) -> list[dict]:
    """Run both sides ``repeats`` times per size and print medians and ratios."""
    results = []
    for n in sizes:
        folder = _ensure_data(n, work_dir, console)
        ours, ref = [], []
        for i in range(repeats):
            console.print(f"  {n:,} events: run {i + 1}/{repeats}", end="\r")
            ours.append(_run_child("trialcast", folder))
            # DuckDB counts the same top-K event types as the spec trialcast fitted.
            (folder / "top_events.json").write_text(json.dumps(ours[-1]["top_events"]))
            ref.append(_run_child("duckdb", folder))
        med = statistics.median(r["seconds"] for r in ours)
        med_ref = statistics.median(r["seconds"] for r in ref)
        events = ours[0]["events"]
        results.append(
            {
                "events": events,
                "accounts": ours[0]["rows"],
                "trialcast_s": med,
                "trialcast_load_validate_s": statistics.median(r["load_validate_s"] for r in ours),
                "trialcast_features_s": statistics.median(r["features_s"] for r in ours),
                "trialcast_events_per_s": events / med,
                "trialcast_peak_mb": max(r["peak_mb"] for r in ours),
                "duckdb_s": med_ref,
                "duckdb_peak_mb": max(r["peak_mb"] for r in ref),
                "ratio_vs_duckdb": med / med_ref,
                "feature_columns": ours[0]["columns"],
            }
        )
    table = Table(title=f"Feature building, median of {repeats} (each run a fresh process)")
    for col in (
        "events",
        "accounts",
        "trialcast s",
        "(load+validate / features)",
        "events/s",
        "peak MB",
        "DuckDB s",
        "DuckDB peak MB",
        "ratio",
    ):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            f"{r['events']:,}",
            f"{r['accounts']:,}",
            f"{r['trialcast_s']:.2f}",
            f"{r['trialcast_load_validate_s']:.2f} / {r['trialcast_features_s']:.2f}",
            f"{r['trialcast_events_per_s'] / 1e6:.2f}M",
            f"{r['trialcast_peak_mb']:,.0f}",
            f"{r['duckdb_s']:.2f}",
            f"{r['duckdb_peak_mb']:,.0f}",
            f"{r['ratio_vs_duckdb']:.2f}x",
        )
    console.print(table)
    (work_dir / "results.json").write_text(json.dumps(results, indent=2))
    console.print(f"Raw results: {work_dir / 'results.json'}")
    return results


if __name__ == "__main__":
    kind, folder_arg = sys.argv[1], Path(sys.argv[2])
    result = child_trialcast(folder_arg) if kind == "trialcast" else child_duckdb(folder_arg)
    print(json.dumps(result))
