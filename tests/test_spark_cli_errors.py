"""Bad input on a Spark target through the real CLI: one message naming the target (or model) and the
fix, exit 2 (nothing ran) or 1 (a model failed), never a traceback or a Java stack trace."""

from __future__ import annotations

import shutil
import socket
import sys

import pytest
from spark_support import require_local_spark

from conftest import FIXTURES, run_cli

pytestmark = pytest.mark.spark


@pytest.fixture
def jaffle(tmp_path):
    project = tmp_path / "jaffle"
    shutil.copytree(FIXTURES / "jaffle", project, ignore=shutil.ignore_patterns("target"))
    return project


def add_target(project, text: str) -> None:
    (project / "project.yml").write_text((project / "project.yml").read_text() + "targets:\n" + text)


def assert_one_message(result, exit_code: int, *needles: str) -> None:
    text = result.stdout + result.stderr
    assert result.returncode == exit_code, text
    for needle in needles:
        assert needle in text, (needle, text)
    for noise in ("Traceback", "at org.apache", "py4j", "Internal error"):
        assert noise not in text, (noise, text)


def test_an_unknown_spark_connect_host_names_the_target(jaffle):
    add_target(jaffle, "  cluster:\n    type: spark\n    remote: sc://no-such-host.invalid:15002\n")
    result = run_cli("build", "--target", "cluster", cwd=jaffle, timeout=60)
    assert_one_message(result, 2, "target 'cluster'", "cannot reach Spark Connect at no-such-host.invalid:15002",
                       "fix remote: in targets:")


def test_a_port_that_is_not_spark_connect_fails_in_seconds(jaffle):
    """Something listens, but it does not speak Spark Connect (gRPC): the client would retry for minutes."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        add_target(jaffle, f"  cluster:\n    type: spark\n    remote: sc://127.0.0.1:{port}\n")
        result = run_cli("run", "--target", "cluster", cwd=jaffle, timeout=180)
    assert_one_message(result, 2, "target 'cluster'", f"127.0.0.1:{port}", "hint:")


def test_a_missing_token_is_named_for_cache_commands_too(jaffle, tmp_path):
    add_target(jaffle, "  cluster:\n    type: spark\n    remote: sc://127.0.0.1:1\n    token_env: SQLSYNTH_NO_TOKEN\n")
    file = tmp_path / "cache.parquet"
    assert run_cli("--project-dir", str(jaffle), "cache", "export", str(file)).returncode == 0  # DuckDB: fine
    result = run_cli("--project-dir", str(jaffle), "cache", "import", str(file), "--target", "cluster",
                     env={"SQLSYNTH_NO_TOKEN": ""})
    assert_one_message(result, 2, "target 'cluster'", "SQLSYNTH_NO_TOKEN", "export SQLSYNTH_NO_TOKEN=")


def test_a_databricks_target_without_databricks_connect(jaffle):
    add_target(jaffle, "  dbx:\n    type: databricks\n    host: https://adb-1.azuredatabricks.net\n"
                       "    token_env: SQLSYNTH_DBX_TOKEN\n    serverless: true\n")
    result = run_cli("build", "--target", "dbx", cwd=jaffle, env={"SQLSYNTH_DBX_TOKEN": "t"})
    assert_one_message(result, 2, "target 'dbx'", "pip install databricks-connect")


# pyspark hidden from the process: importlib finds no spec for a name mapped to None in sys.modules
WITHOUT_PYSPARK = ("import sys; sys.modules['pyspark'] = None; sys.argv[0] = 'sqlsynth'; "
                   "from sqlsynth.cli import main; main()")


def test_a_missing_spark_extra_names_the_pip_line(jaffle):
    add_target(jaffle, "  spark:\n    type: spark\n    remote: local[1]\n")
    import os
    import subprocess

    result = subprocess.run([sys.executable, "-c", WITHOUT_PYSPARK, "build", "--target", "spark"], cwd=jaffle,
                            capture_output=True, text=True, timeout=120, env={**os.environ, "NO_COLOR": "1"})
    assert_one_message(result, 2, "target 'spark' needs pyspark", "pip install 'sqlsynth[spark]'")
    assert not (jaffle / "target" / "spark").exists()  # nothing started


def test_a_model_spark_cannot_run_fails_alone_with_its_file(jaffle):
    """Compiles, then fails in Spark (ANSI cast): exit 1, the model and file named, the rest built."""
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark local mode needs Java 17")
    add_target(jaffle, "  spark:\n    type: spark\n    remote: local[1]\n")
    (jaffle / "models" / "marts" / "bad_cast.sql").write_text(
        "{{ config(materialized='table') }}\nselect cast(first_name as int) as n from {{ ref('stg_customers') }}\n")
    result = run_cli("build", "--target", "spark", cwd=jaffle, timeout=900)
    assert_one_message(result, 1, "bad_cast", "models/marts/bad_cast.sql", "CAST_INVALID_INPUT")
    assert "ERROR=1" in result.stderr and "OK=8" in result.stderr


def test_a_driver_jvm_that_cannot_start_shows_its_own_error_then_one_line(jaffle):
    """The driver JVM's stderr goes through a filter (spark_jvm.py) that drops only the incubator-module
    warning: the JVM's own error still reaches the user, before sqlsynth's one line."""
    require_local_spark()
    add_target(jaffle, "  spark:\n    type: spark\n    remote: local[1]\n    spark_conf:\n"
                       "      spark.driver.extraJavaOptions: -Xss1k\n")  # a thread stack the JVM refuses
    result = run_cli("build", "--target", "spark", cwd=jaffle, timeout=300)
    assert_one_message(result, 2, "Could not create the Java Virtual Machine",
                       "target 'spark': cannot start Spark at local[1]")
    assert result.stderr.index("Could not create") < result.stderr.index("target 'spark'")
