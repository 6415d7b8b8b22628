"""`sqlsynth init`: copy the example project template into a new folder."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from .errors import SqlsynthError

TEMPLATE = Path(__file__).parent / "templates" / "project"


def create_project(path: Path, force: bool = False) -> Path:
    name = re.sub(r"\W", "_", path.name).lower()
    if not re.match(r"^[a-z_]", name):
        name = "p_" + name
    if path.exists() and any(path.iterdir()) and not force:
        raise SqlsynthError(f"{path} already exists and is not empty", hint="pick a new name or pass --force")
    shutil.copytree(TEMPLATE, path, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    project_file = path / "project.yml"
    project_file.write_text(project_file.read_text().replace("__PROJECT_NAME__", name))
    return path
