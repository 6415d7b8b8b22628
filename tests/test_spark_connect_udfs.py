"""Python functions over Spark Connect (a real Spark Connect server started from pyspark's own jars): the
udfs/ files and sqlsynth itself travel to the server's Python workers with spark.addArtifacts(pyfile=True),
no copying by hand, and the functions answer as on a local session."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_spark_udfs import UDFS

pytestmark = pytest.mark.spark
pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java 17 (.ci/run installs openjdk-17-jre-headless)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A Spark Connect server (local[2], 512 MB) whose workers do not see this checkout on PYTHONPATH."""
    import pyspark

    home = Path(pyspark.__file__).parent
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(SPARK_HOME=str(home), PYSPARK_PYTHON=sys.executable)
    log = (tmp_path_factory.mktemp("connect") / "server.log").open("w")
    process = subprocess.Popen(
        [str(home / "bin/spark-submit"), "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
         "--master", "local[2]", "--conf", f"spark.connect.grpc.binding.port={port}",
         "--conf", "spark.driver.memory=512m", "--conf", "spark.ui.enabled=false"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail(f"the Spark Connect server did not start: {log.name}")
        yield f"sc://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        log.close()


@pytest.fixture(scope="module")
def spark(server, tmp_path_factory):
    from sqlsynth.project import load_project
    from sqlsynth.targets.spark_session import open_session
    from sqlsynth.targets.spark_udfs import register_python_functions

    root = tmp_path_factory.mktemp("connectudfs") / "p"
    (root / "udfs").mkdir(parents=True)
    (root / "udfs/text_tools.py").write_text(textwrap.dedent(UDFS))
    (root / "project.yml").write_text(f"name: p\ntargets:\n  sc:\n    type: spark\n    remote: {server}\n")
    project = load_project(root)
    # pyspark marks the whole process as Spark Connect (SPARK_CONNECT_MODE_ENABLED, SPARK_REMOTE) and a
    # remote session's stop() leaves the marks: later modules' local sessions would then fail.
    marks = {name: os.environ.get(name) for name in ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE")}
    session = open_session("sc", project.config.targets["sc"], project.target_dir / "spark")
    register_python_functions(session, project, connect=True)
    yield session
    session.stop()
    for name, value in marks.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def test_functions_ship_with_the_session(spark):
    from pyspark.sql.functions import udf

    row = spark.sql("select html_to_text('<p>a &amp; b</p>') as h, shout('hi there', 2) as s, "
                    "initials('hi there') as i, size(embed('hello')) as e, trim_context(null, 10, "
                    "'all-minilm-l6-v2') as tn").collect()[0]
    assert row.asDict(recursive=True) == {"h": "a & b", "s": {"text": "HI THERE!HI THERE!", "words": ["hi", "there"]},
                                          "i": ["h", "t"], "e": 384, "tn": None}

    def where(_: int) -> str:
        import sqlsynth

        return sqlsynth.__file__

    spark.udf.register("sqlsynth_file", udf(where, "string", useArrow=True))
    shipped = spark.sql("select sqlsynth_file(1) as f").collect()[0].f
    assert ".zip" in shipped and "/sqlsynth-" in shipped  # imported from the artifact, not a local checkout
