"""Layout rules checked on the source: no branch on a model kind's name, short signatures."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from models.kinds import KINDS

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("features", "training", "serving", "trialcast", "models")
#: the most parameters a public function may take (self / cls not counted)
MAX_PARAMETERS = 8
KIND_NAMES = frozenset(KINDS)


def _trees() -> Iterator[tuple[Path, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT), ast.parse(path.read_text(), filename=str(path))


def _strings(node: ast.expr) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return {s for elt in node.elts for s in _strings(elt)}
    return set()


def kind_name_branches() -> list[str]:
    """Comparisons with a model kind's name (``kind == "churn"``, ``in ("conversion", ...)``)."""
    found = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                if any(_strings(x) & KIND_NAMES for x in operands):
                    found.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
    return found


def _parameters(fn: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> int:
    args = fn.args
    names = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    if args.vararg:
        names.append(args.vararg)
    if args.kwarg:
        names.append(args.kwarg)
    if method and names and names[0].arg in ("self", "cls"):
        names = names[1:]
    return len(names)


def long_signatures() -> list[str]:
    """Public functions and methods with more than ``MAX_PARAMETERS`` parameters."""
    found = []
    for path, tree in _trees():
        methods = {
            id(fn)
            for cls in ast.walk(tree)
            if isinstance(cls, ast.ClassDef)
            for fn in cls.body
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if fn.name.startswith("_"):
                continue
            n = _parameters(fn, id(fn) in methods)
            if n > MAX_PARAMETERS:
                found.append(f"{path}:{fn.lineno}: {fn.name} takes {n} parameters")
    return found


def test_no_branch_on_a_model_kind_name() -> None:
    """What differs between kinds is a ``ModelKind`` attribute, never an ``if`` on its name."""
    assert not kind_name_branches(), "\n".join(kind_name_branches())


def test_the_rules_see_what_they_forbid() -> None:
    tree = ast.parse('if kind == "churn":\n    pass\nx = model.kind in ("conversion", "y")\n')
    compares = [n for n in ast.walk(tree) if isinstance(n, ast.Compare)]
    assert all(_strings(c.comparators[0]) & KIND_NAMES for c in compares) and len(compares) == 2
    fn = ast.parse("def f(self, a, b, c, d, e, f, g, h, *, i): pass").body[0]
    assert isinstance(fn, ast.FunctionDef)
    assert _parameters(fn, method=True) == 9
