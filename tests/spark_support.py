"""The Spark test modules' shared session: real Apache Spark in local mode, one session per module.

A module reads back what its CLI builds wrote (each `sqlsynth` command its own process and JVM) through one
`local[2]` session opened the way the CLI opens it (512 MB driver, 2 shuffle partitions: LOCAL_DEFAULTS), on
that project's metastore, and stopped at the module's end so that the next module opens its own.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# pyspark treats the whole process as Spark Connect while these are set (a remote session's stop() leaves them)
CONNECT_MARKS = ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE")


def require_local_spark() -> None:
    """Skip the calling module where pyspark or Java is missing (`.ci/run` installs both)."""
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark local mode needs Java 17 (.ci/run installs openjdk-17-jre-headless)",
                    allow_module_level=True)


@contextmanager
def local_session(state_dir: Path) -> Iterator[Any]:
    """A local[2] session on the metastore under state_dir (a project's target/spark), stopped on exit."""
    from sqlsynth.config import parse_project_config
    from sqlsynth.targets.spark_session import open_session

    marks = {name: os.environ.pop(name) for name in CONNECT_MARKS if name in os.environ}
    target = parse_project_config({"name": "p", "targets": {"spark": {"type": "spark", "remote": "local[2]"}}})
    session = open_session("spark", target.targets["spark"], state_dir)
    try:
        yield session
    finally:
        session.stop()
        os.environ.update(marks)


def module_session(upstream: str, state_dir: Callable[[Any], Path]) -> Any:
    """A module-scoped `spark` fixture on the metastore at state_dir(<the upstream fixture's value>)."""

    @pytest.fixture(scope="module")
    def spark(request: pytest.FixtureRequest) -> Iterator[Any]:
        with local_session(state_dir(request.getfixturevalue(upstream))) as session:
            yield session

    return spark
