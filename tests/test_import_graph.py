"""The layout's dependency rule, checked on the source: features <- models <- training, serving."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("features", "models", "training", "serving", "trialcast")
#: package -> the first-party packages it may import
ALLOWED = {
    "features": {"features"},
    "models": {"features", "models"},
    "training": {"features", "models", "training"},
    "serving": {"features", "models", "serving"},
    "trialcast": set(PACKAGES),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_run_one_way(package: str) -> None:
    wrong = {
        f"{path.relative_to(ROOT)} imports {other}"
        for path in (ROOT / package).rglob("*.py")
        for other in _imports(path) - ALLOWED[package]
    }
    assert not wrong, sorted(wrong)


#: The brief's folder beside the repo, which a user's clone does not have.
OUTSIDE = ".." + "/shared"


def test_no_tracked_file_points_outside_the_repo() -> None:

    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    offenders = [
        f
        for f in files
        if (ROOT / f).is_file()
        and (ROOT / f).suffix in {".py", ".md", ".toml", ".ipynb", ".txt", ".cfg", ""}
        and OUTSIDE in (ROOT / f).read_text(errors="ignore")
    ]
    assert not offenders, offenders
