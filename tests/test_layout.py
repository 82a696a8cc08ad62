"""The house's floors, checked on the source: pixelrnn_tf at the bottom; sensor, training and
export above it, sensor and export never importing training and training never importing export;
pixelrnn_cli on top, the only package that imports all four; no function over 80 lines."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FLOORS = ("pixelrnn_tf", "sensor", "training", "export")
FORBIDDEN = {
    "pixelrnn_tf": {"sensor", "training", "export", "pixelrnn_cli"},
    "sensor": {"training", "export", "pixelrnn_cli"},
    "export": {"training", "pixelrnn_cli"},
    "training": {"export", "pixelrnn_cli"},
}
MAX_FUNCTION_LINES = 80


def _modules(package):
    for path in sorted((ROOT / package).rglob("*.py")):
        yield path, ast.parse(path.read_text())


def _imported_packages(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            yield node.lineno, name.split(".")[0]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_package_imports_a_floor_above_it(package):
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path, tree in _modules(package)
        for line, name in _imported_packages(tree)
        if name in FORBIDDEN[package]
    ]
    assert not wrong, wrong


def test_only_the_cli_imports_all_four_floors():
    def imports(package):
        return {name for _, tree in _modules(package) for _, name in _imported_packages(tree) if name in FLOORS}

    assert imports("pixelrnn_cli") == set(FLOORS)


@pytest.mark.parametrize("package", FLOORS + ("pixelrnn_cli",))
def test_no_function_is_longer_than_80_lines(package):
    long = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path, tree in _modules(package)
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, long
