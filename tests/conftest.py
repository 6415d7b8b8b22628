"""Shared helpers: fixture projects copied to tmp, the real CLI entry point, project files."""

from __future__ import annotations

import os

# Busy-waiting OpenMP threads make torch on 2 shared cores several times slower (measured 8x).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture
def fixture_project(tmp_path):
    """Copy a fixture project into tmp_path and return its path."""
    def copy(name: str) -> Path:
        dest = tmp_path / name
        shutil.copytree(FIXTURES / name, dest, ignore=shutil.ignore_patterns("target"))
        return dest
    return copy


@pytest.fixture
def make_project(tmp_path):
    """Write a small project from a {relative path: text} mapping (text is dedented)."""
    def make(files: dict[str, str], name: str = "proj") -> Path:
        root = tmp_path / name
        files = {"project.yml": f"name: {name}\n", **files}
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"))
        return root
    return make


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 120):
    """Run the real `sqlsynth` entry point in a subprocess."""
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "sqlsynth", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


def write_file(root: Path, rel: str, text: str) -> Path:
    """Write one project file (text is dedented), creating its folders."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def count_rows(root: Path, table: str, schema: str = "main") -> int:
    """Rows of a relation in the `small` project's database, read-only."""
    import duckdb

    from sqlsynth.identifiers import relation

    con = duckdb.connect(str(root / "target/small.duckdb"), read_only=True)
    try:
        return con.execute(f"select count(*) from {relation(schema, table)}").fetchall()[0][0]
    finally:
        con.close()


@pytest.fixture
def small(tmp_path):
    """A built project: seed s (ids 1, 2) -> table a -> table b (ids 2, 4)."""
    root = tmp_path / "small"
    write_file(root, "project.yml", "name: small\n")
    write_file(root, "seeds/s.csv", "id\n1\n2\n")
    write_file(root, "models/a.sql", "{{ config(materialized='table') }}\nselect * from {{ ref('s') }}")
    write_file(root, "models/b.sql", "{{ config(materialized='table') }}\nselect id * 2 as id from {{ ref('a') }}")
    assert run_cli("build", cwd=root).returncode == 0
    return root
