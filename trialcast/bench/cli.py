"""How long the command line takes to answer, beside the interpreter's floor.

Runs ``trialcast --help``, ``trialcast check-config <demo config>`` and
``trialcast init-config`` as fresh processes, and in the same run the floor
(``python -c pass``) and the reference: a process that imports what every
command used to import up front (MLflow, BentoML, SHAP, Dask, LightGBM).
Prints medians and ratios. Run: ``python -m trialcast.bench.cli --repeats 10``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EAGER_IMPORTS = "import mlflow, bentoml, shap, dask.dataframe, distributed, lightgbm, pandas"


def _time(cmd: list[str], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    exe = shutil.which("trialcast") or str(Path(sys.executable).with_name("trialcast"))
    work = Path(tempfile.mkdtemp(prefix="trialcast-bench-cli-"))
    config = work / "c.toml"
    subprocess.run([exe, "init-config", str(config)], check=True, capture_output=True)
    cases = {
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        "trialcast --help": [exe, "--help"],
        "trialcast check-config": [exe, "check-config", str(config)],
        "trialcast init-config": [exe, "init-config", str(work / "x.toml"), "--force"],
        "eager imports (reference)": [sys.executable, "-c", EAGER_IMPORTS],
    }
    medians = {}
    for name, cmd in cases.items():
        times = _time(cmd, args.repeats)
        medians[name] = statistics.median(times)
        print(
            f"{name:<28} median {medians[name]:.3f} s  (min {min(times):.3f}, max {max(times):.3f})"
        )
    ref = medians["eager imports (reference)"]
    floor = medians["python -c pass (floor)"]
    print(f"--help is {ref / medians['trialcast --help']:.1f}x faster than the eager reference;")
    print(f"{medians['trialcast --help'] / floor:.1f}x the bare interpreter's start-up")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
