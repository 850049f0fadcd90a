"""``trialcast funnel`` end to end on a generated company written to files (no champion
yet: the funnel is still drawn, and says why the expected paid share is missing)."""

from __future__ import annotations

import pandas as pd
import pytest
from company_factory import SHAPES, make_company
from typer.testing import CliRunner

from trialcast.cli import app

pytestmark = pytest.mark.slow  # end to end through the registry check

runner = CliRunner()


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    return make_company(tmp_path_factory.mktemp("funnel-cli"), n_accounts=400, seed=71,
                        **SHAPES["short"])  # fmt: skip


def test_funnel_command_writes_parquet_and_picture_by_month(company, tmp_path):
    config = company.root / "trialcast.toml"
    out = tmp_path / "funnel.parquet"
    result = runner.invoke(app, ["funnel", "-c", str(config), "--by", "month",
                                 "--as-of", "2026-03-01", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    assert {"cohort", "segment", "stage", "trials", "reached", "share", "median_days"} <= set(table)
    assert set(table["cohort"]) == {f"2025-{m:02d}-01" for m in range(9, 13)} | {
        "2026-01-01",
        "2026-02-01",
    }  # nothing signed up on or after --as-of
    assert out.with_suffix(".png").stat().st_size > 10_000
    assert "no expected paid share" in result.output.replace("\n", " ")
    assert (company.root / "models" / "funnel" / "funnel.csv").exists()  # what the service reads


@pytest.mark.parametrize(
    ("args", "extra", "says"),
    [
        (["--out", "funnel.xlsx"], "", "must end in .csv or .parquet"),
        (["--by", "day"], "", "--by"),
        (["--as-of", "someday"], "", "--as-of"),
        ([], '\n[funnel]\nsegments = ["tier"]\n', "[funnel].segments: column 'tier'"),
    ],
)
def test_bad_input_is_a_clear_error_not_a_traceback(company, tmp_path, args, extra, says):
    config = tmp_path / "c.toml"
    text = (company.root / "trialcast.toml").read_text()
    config.write_text(text.replace('path = "', f'path = "{company.root}/') + extra)
    result = runner.invoke(app, ["funnel", "-c", str(config), *args])
    assert result.exit_code == 2, result.output
    assert says in result.output.replace("\n", " ")
    assert "Traceback" not in result.output
