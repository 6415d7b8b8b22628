"""A real Spark Connect server for tests and benchmarks: pyspark's own jars, ``--master local[N]``.

Started once (like a deployment's cluster, which is already running when a command connects), with the
settings a ``local[N]`` target gets; its Python workers run this interpreter and import this checkout's
sqlsynth. Stopped (its whole process group) when the context ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

START_TIMEOUT_S = 180


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _command(cores: int, port: int, state: Path) -> list[str]:
    import pyspark

    from ..targets.spark_session import LOCAL_DEFAULTS

    conf = {**LOCAL_DEFAULTS, "spark.connect.grpc.binding.port": str(port),
            "spark.sql.warehouse.dir": str(state / "warehouse")}
    command = [str(Path(pyspark.__file__).parent / "bin" / "spark-submit"), "--class",
               "org.apache.spark.sql.connect.service.SparkConnectServer", "--master", f"local[{cores}]"]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    return command + ["spark-internal"]


@contextlib.contextmanager
def spark_connect_server(cores: int = 2, state: Path | None = None) -> Iterator[str]:
    """Yields the server's ``sc://localhost:PORT`` once it accepts connections; ``state``: the folder of its
    log and warehouse (tables as files under ``warehouse/<schema>.db/``), a new temporary one by default."""
    import sqlsynth

    port, state = _free_port(), state or Path(tempfile.mkdtemp(prefix="sqlsynth-connect-"))
    state.mkdir(parents=True, exist_ok=True)
    checkout = str(Path(sqlsynth.__file__).resolve().parents[1])
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable,
           "PYTHONPATH": os.pathsep.join(p for p in (checkout, os.environ.get("PYTHONPATH")) if p)}
    with open(state / "server.log", "w") as log:
        server = subprocess.Popen(_command(cores, port, state), cwd=state, env=env, stdout=log, stderr=log,
                                  start_new_session=True)
        try:
            _wait_for(server, port, state / "server.log")
            yield f"sc://localhost:{port}"
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def _wait_for(server: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the Spark Connect server did not start within {START_TIMEOUT_S} s: see {log}")
        time.sleep(0.5)
