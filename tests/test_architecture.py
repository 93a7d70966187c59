"""The package's layout keeps its promises (docs/architecture.rst), checked from the sources.

One release of scikeras or TensorFlow should break one module; helpers take arrays and a
config, never the estimator; no module does two jobs (400 lines of code at most).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "skembedrec"
MODULES = sorted(PACKAGE.glob("*.py"))
MAX_CODE_LINES = 400
ONLY_IN_KERAS = ("scikeras", "tensorflow.python", "_training_dim", ".initialize(")
# Modules that work for the estimator and must not be handed it.
HELPERS = ("_training.py", "_persistence.py", "_recommend.py", "_network.py", "_codec.py",
           "_archive.py", "_export.py", "_keras.py")


def _code_lines(text: str) -> list[int]:
    """Line numbers of code: blank lines, comments and docstrings aside."""
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(text)):
        body = getattr(node, "body", None)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and body:
            first = body[0]
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                docstrings.update(range(first.lineno, first.end_lineno + 1))
    return [number for number, line in enumerate(text.splitlines(), 1)
            if line.strip() and not line.strip().startswith("#") and number not in docstrings]


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_module_does_two_jobs(path):
    assert len(_code_lines(path.read_text())) <= MAX_CODE_LINES


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_library_internals_are_touched_in_keras_module_only(path):
    if path.name == "_keras.py":
        return
    text = path.read_text()
    lines = text.splitlines()
    code = "\n".join(lines[number - 1].split("#")[0] for number in _code_lines(text))
    assert [word for word in ONLY_IN_KERAS if word in code] == []


@pytest.mark.parametrize("name", [name for name in HELPERS if (PACKAGE / name).exists()])
def test_helpers_are_not_handed_the_estimator(name):
    tree = ast.parse((PACKAGE / name).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "EmbeddingRatingRegressor" not in imported and "_estimator" not in modules
    parameters = {arg.arg for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
                  for arg in node.args.args + node.args.kwonlyargs}
    assert not parameters & {"estimator", "est", "model_wrapper"}


def test_recommender_outputs_do_not_know_keras():
    tree = ast.parse((PACKAGE / "_recommend.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert not imported & {"keras", "tensorflow", "scikeras"}


def test_the_package_ships_its_licence_and_type_marker():
    root = PACKAGE.parent
    assert "BSD 3-Clause" in (root / "LICENSE").read_text() or "Redistribution and use" in (
        root / "LICENSE").read_text()
    assert (PACKAGE / "py.typed").exists()


def test_the_oldest_pins_are_the_declared_floors():
    """`tox -e oldest` installs .ci/constraints-oldest.txt: exactly the floors of the runtime
    dependencies, so the floors in pyproject.toml are versions the suite has run on."""
    import tomllib

    root = PACKAGE.parent
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    floors = dict(requirement.split(">=") for requirement in declared)
    pins = dict(line.split("==") for line in (root / ".ci" / "constraints-oldest.txt")
                .read_text().splitlines() if line and not line.startswith("#"))
    assert set(pins) == set(floors)
    for name, floor in floors.items():
        assert pins[name].split(".")[:len(floor.split("."))] == floor.split("."), name
