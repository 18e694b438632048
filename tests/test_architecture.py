"""The dependency rule (ARCHITECTURE.md) is a contract import-linter checks, not a comment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "m3mem", "models", "preprocessing")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([exe, "--no-cache", "--config", str(root / "pyproject.toml")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_layers_and_no_cycles_hold():
    r = lint_imports(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 kept, 0 broken" in r.stdout


def _copy(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_a_lower_layer_importing_a_higher_one_breaks_the_contract(tmp_path):
    root = _copy(tmp_path)
    with open(root / "models" / "base.py", "a") as f:
        f.write("\nfrom m3mem.config import Settings  # noqa: E402,F401  (the mistake under test)\n")
    r = lint_imports(root)
    assert r.returncode != 0
    assert "BROKEN" in r.stdout and "models.base -> m3mem.config" in r.stdout


def test_an_import_cycle_inside_m3mem_breaks_the_contract(tmp_path):
    root = _copy(tmp_path)
    with open(root / "m3mem" / "graph.py", "a") as f:
        f.write("\nfrom m3mem.store import Store  # noqa: E402,F401  (the mistake under test)\n")
    r = lint_imports(root)
    assert r.returncode != 0
    assert "m3mem.graph -> m3mem.store" in r.stdout
