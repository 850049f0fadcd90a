"""The layout's dependency rule, checked on the source: features <- models <- training, serving.

One exception: ``features.config`` holds the company config, whose training
sections (``[model]``, ``[promotion]``, ``[registry]``) are declared in the leaf
``models.config_sections`` so that ``features`` does not own them; that leaf may
import nothing first-party but the config base class.
"""

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


#: modules any package may import: leaves below every layer
SHARED_LEAVES = {"models.config_sections"}
#: what a shared leaf may import (first-party)
LEAF_IMPORTS = {"features.config_sources"}


def _modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {m for m in found if m.split(".")[0] in PACKAGES}


def _imports(path: Path) -> set[str]:
    return {m.split(".")[0] for m in _modules(path) - SHARED_LEAVES}


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_run_one_way(package: str) -> None:
    wrong = {
        f"{path.relative_to(ROOT)} imports {other}"
        for path in (ROOT / package).rglob("*.py")
        for other in _imports(path) - ALLOWED[package]
    }
    assert not wrong, sorted(wrong)


@pytest.mark.parametrize("leaf", sorted(SHARED_LEAVES))
def test_shared_leaves_import_only_the_config_base(leaf: str) -> None:
    path = ROOT / (leaf.replace(".", "/") + ".py")
    assert _modules(path) <= LEAF_IMPORTS, sorted(_modules(path) - LEAF_IMPORTS)


def test_features_owns_no_training_settings() -> None:
    """The training, gate and registry sections and the tracking URI live outside features."""
    assert not (ROOT / "features" / "config_training.py").exists()
    assert not (ROOT / "features" / "settings.py").exists()
    owned = {
        node.name
        for path in (ROOT / "features").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef | ast.FunctionDef)
    }
    moved = {"ModelConfig", "PromotionConfig", "RegistryConfig", "resolve_tracking_uri"}
    assert not owned & moved, sorted(owned & moved)


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
