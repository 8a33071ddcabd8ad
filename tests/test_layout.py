"""The shape of the house: layers (import-linter), lint (ruff), one folder per concern, short functions."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("tall_model", "tall_data", "training", "baselines", "evaluation", "demo_build", "tall_app", "benchmarks")
MAX_FUNCTION_LINES = 80
MAX_FOLDER_SHARE = 0.30


def product_files() -> list[Path]:
    return sorted([p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")] + [REPO / "app.py"])


def code_lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.strip().startswith("#"))


def _tool(name: str) -> list[str]:
    """The console script next to this interpreter (pip installs it there), else on PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -r requirements.txt")
    return [found]


def test_import_layers_hold():
    """pyproject.toml's contracts: tall_model imports nothing of ours, nothing imports demo_build, ..."""
    proc = subprocess.run(_tool("lint-imports"), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout or "broken" not in proc.stdout.split("Contracts:")[-1]


def test_ruff_is_clean():
    proc = subprocess.run(_tool("ruff") + ["check", "--no-cache", "."], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_no_folder_holds_more_than_30_percent_of_the_code():
    lines = {pkg: sum(code_lines(p) for p in (REPO / pkg).rglob("*.py")) for pkg in PACKAGES}
    lines["app.py"] = code_lines(REPO / "app.py")
    total = sum(lines.values())
    too_big = {pkg: f"{n / total:.0%}" for pkg, n in lines.items() if n / total > MAX_FOLDER_SHARE}
    assert not too_big, f"{too_big} of {total} lines of code"


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in product_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, long


def test_every_import_inside_a_function_says_why():
    """ruff (PLC0415) wants imports at the top; the few optional heavy ones carry `noqa: PLC0415 -- reason`."""
    bare = [f"{path.relative_to(REPO)}:{i}" for path in product_files()
            for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if "noqa: PLC0415" in line and not re.search(r"noqa: PLC0415 -- \S", line)]
    assert not bare, bare


def test_test_helpers_live_under_tests():
    assert not (REPO / "tall_app" / "testing.py").exists()
    assert not list((REPO / "training").glob("*test*.py"))  # product code named like a test misleads
