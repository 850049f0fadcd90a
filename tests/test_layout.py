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


def _is_cli_command(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A Typer command: every parameter is ``Annotated[..., typer.Option/Argument(...)]``
    (its parameters are the command's options, which Typer cannot read from a dataclass)."""
    args = [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]
    return bool(args) and all(
        a.annotation is not None
        and "Annotated[" in ast.unparse(a.annotation)
        and "typer." in ast.unparse(a.annotation)
        for a in args
    )


def long_signatures() -> list[str]:
    """Public functions and methods (not Typer commands) over ``MAX_PARAMETERS`` parameters,
    as ``path:name: ...``."""
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
            if fn.name.startswith("_") or _is_cli_command(fn):
                continue
            n = _parameters(fn, id(fn) in methods)
            if n > MAX_PARAMETERS:
                found.append(f"{path}:{fn.name}: line {fn.lineno}, {n} parameters")
    return found


def test_no_branch_on_a_model_kind_name() -> None:
    """What differs between kinds is a ``ModelKind`` attribute, never an ``if`` on its name."""
    assert not kind_name_branches(), "\n".join(kind_name_branches())


def test_no_public_function_takes_more_than_eight_parameters() -> None:
    """Long option lists are grouped into small frozen dataclasses (config slices)."""
    found = long_signatures()
    assert not found, "group these options into a frozen dataclass:\n" + "\n".join(found)


def test_the_rules_see_what_they_forbid() -> None:
    tree = ast.parse('if kind == "churn":\n    pass\nx = model.kind in ("conversion", "y")\n')
    compares = [n for n in ast.walk(tree) if isinstance(n, ast.Compare)]
    assert all(_strings(c.comparators[0]) & KIND_NAMES for c in compares) and len(compares) == 2
    fn = ast.parse("def f(self, a, b, c, d, e, f, g, h, *, i): pass").body[0]
    assert isinstance(fn, ast.FunctionDef)
    assert _parameters(fn, method=True) == 9
    command = ast.parse(
        "def c(a: Annotated[int, typer.Option()] = 1, b: Annotated[str, typer.Option()] = ''): pass"
    ).body[0]
    assert isinstance(command, ast.FunctionDef) and _is_cli_command(command)
    assert not _is_cli_command(fn)
