"""Open a SparkSession for a spark/databricks target: local[N] in-process or Spark Connect.

Every failure to get a session (pyspark missing, token env unset, host unreachable) is one
ConfigError naming the target and the fix; the CLI turns it into exit 2 without a traceback.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from . import SPARK_EXTRA
from .spark_jvm import launch_driver

GRPC_HANDSHAKE_S = 15

# A small local Spark: tests and laptops; a cluster's own settings come from spark_conf.
LOCAL_DEFAULTS = {
    "spark.driver.memory": "512m",
    "spark.sql.shuffle.partitions": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
}

# A command's driver JVM lives for seconds to minutes and spends its start-up loading and compiling classes:
# the quick C1 compiler alone and one GC thread leave the cores to the work (bench/spark_startup.py).
# spark_conf's spark.driver.extraJavaOptions comes after these (-XX:TieredStopAtLevel=4 undoes the first; a
# collector of its own replaces the second).
LOCAL_JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")


def require_pyspark(target_name: str) -> None:
    if importlib.util.find_spec("pyspark") is None:
        raise ConfigError(f"target '{target_name}' needs pyspark, which is not installed",
                          path="project.yml", hint=SPARK_EXTRA)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the parent package (databricks) is missing too
        return False


def _token(target_name: str, env: str | None) -> str | None:
    if env is None:
        return None
    value = os.environ.get(env)
    if not value:
        raise ConfigError(f"target '{target_name}': environment variable {env} (token_env) is not set",
                          path="project.yml", hint=f"export {env}=<token>; the token is never written to disk")
    return value


# Loggers that repeat, with a Java stack trace, a failure sqlsynth reports itself as one line (a failed
# task of a failed model), or that Spark's own log4j template silences ("Database default already exists").
_SILENCED_LOGGERS = ("org.apache.spark.executor.Executor", "org.apache.spark.scheduler.TaskSetManager",
                     "org.apache.spark.util.Utils", "org.apache.spark.sql.execution.datasources.FileFormatWriter",
                     "org.apache.hadoop.hive.metastore.RetryingHMSHandler",
                     # a Delta/Iceberg write (MERGE, DELETE) that failed: aborted commits, then the error
                     "org.apache.spark.sql.execution.datasources.v2")


def _quiet_log4j(state_dir: Path) -> Path:
    """Spark's own log lines (WARN at start-up) would bury sqlsynth's output: errors only."""
    path = state_dir / "log4j2.properties"
    silenced = "".join(f"logger.s{i}.name = {name}\nlogger.s{i}.level = off\n"
                       for i, name in enumerate(_SILENCED_LOGGERS))
    # pyspark's driver (PythonGatewayServer) starts logging as a shell: Spark then prints 'Setting default log
    # level to "WARN"' and a setLogLevel hint unless that logger has its own level, equal to the root's
    path.write_text("rootLogger.level = error\nrootLogger.appenderRef.stderr.ref = console\n"
                    "logger.shell.name = org.apache.spark.api.python.PythonGatewayServer\n"
                    "logger.shell.level = error\n"
                    "appender.console.type = Console\nappender.console.name = console\n"
                    "appender.console.target = SYSTEM_ERR\nappender.console.layout.type = PatternLayout\n"
                    "appender.console.layout.pattern = spark: %p %c{1}: %m%n\n" + silenced, encoding="utf-8")
    return path


def local_conf(target: Any, state_dir: Path) -> dict[str, str]:
    state_dir.mkdir(parents=True, exist_ok=True)
    # a Derby metastore under target/ keeps tables and views between commands, like the DuckDB file
    conf = {"spark.master": target.remote, "spark.app.name": "sqlsynth", **LOCAL_DEFAULTS,
            "spark.sql.catalogImplementation": "hive",
            "spark.sql.warehouse.dir": str(state_dir / "warehouse"),
            "spark.hadoop.javax.jdo.option.ConnectionURL":
                f"jdbc:derby:;databaseName={state_dir / 'metastore_db'};create=true"}
    conf.update(_python_workers())
    conf.update(target.spark_conf)
    # the user's JVM options come after ours (the later flag wins) instead of dropping the metastore's and log's
    user = target.spark_conf.get("spark.driver.extraJavaOptions", "")
    java = (f"{_jvm_flags(user)} -Dderby.system.home={state_dir} "
            f"-Dlog4j2.configurationFile={_quiet_log4j(state_dir)}")
    conf["spark.driver.extraJavaOptions"] = f"{java} {user}".strip()
    return conf


def _jvm_flags(user: str) -> str:
    """LOCAL_JVM_OPTIONS, less the collector when the user names one (two collectors stop the JVM)."""
    user_gc = re.search(r"-XX:\+Use\w+GC\b", user) is not None
    return " ".join(flag for flag in LOCAL_JVM_OPTIONS if not (user_gc and flag.endswith("GC")))


def _local_session(target: Any, state_dir: Path) -> Any:
    from pyspark.sql import SparkSession

    conf = local_conf(target, state_dir)
    launch_driver(conf)
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _python_workers() -> dict[str, str]:
    """Python workers (ai_query tasks, UDFs) run this interpreter and import this sqlsynth, as the driver."""
    import sys

    import sqlsynth

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # pyspark reads the env var, not the conf
    paths = [str(Path(sqlsynth.__file__).resolve().parents[1])]
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    return {"spark.pyspark.python": sys.executable, "spark.pyspark.driver.python": sys.executable,
            "spark.executorEnv.PYTHONPATH": os.pathsep.join(paths)}


def _check_reachable(target_name: str, remote: str) -> None:
    """Fail in seconds: the Spark Connect client itself retries an unreachable server for minutes."""
    import socket
    from urllib.parse import urlparse

    parsed = urlparse(remote)
    host, port = parsed.hostname or "localhost", parsed.port or 15002
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as exc:
        raise ConfigError(f"target '{target_name}': cannot reach Spark Connect at {host}:{port} ({exc.strerror or exc})",
                          path="project.yml",
                          hint="start the server (sbin/start-connect-server.sh) or fix remote: in targets:") from None
    if importlib.util.find_spec("grpc_status") is None or importlib.util.find_spec("pandas") is None:
        raise ConfigError(f"target '{target_name}': Spark Connect needs its client libraries",
                          path="project.yml", hint="pip install 'pyspark[connect]==4.0.1'")
    _check_speaks_grpc(target_name, f"{host}:{port}", secure="use_ssl=true" in remote.lower())


def _check_speaks_grpc(target_name: str, address: str, secure: bool) -> None:
    """A port that accepts connections but is not a gRPC server (a wrong port, a proxy) would also keep the
    Spark Connect client retrying for minutes: the HTTP/2 handshake must complete within seconds."""
    import grpc

    channel = grpc.secure_channel(address, grpc.ssl_channel_credentials()) if secure \
        else grpc.insecure_channel(address)
    try:
        grpc.channel_ready_future(channel).result(timeout=GRPC_HANDSHAKE_S)
    except grpc.FutureTimeoutError:
        raise ConfigError(f"target '{target_name}': {address} accepts connections but does not answer as a "
                          f"Spark Connect (gRPC) server within {GRPC_HANDSHAKE_S} s", path="project.yml",
                          hint="check the port in remote: (Spark Connect listens on 15002 by default) and "
                               "use_ssl=true for a TLS endpoint") from None
    finally:
        channel.close()


def _connect_url(target: Any, token: str | None) -> str:
    url = target.remote.rstrip("/")
    return f"{url}/;token={token}" if token else url


def open_session(target_name: str, target: Any, state_dir: Path) -> Any:
    """A live SparkSession for the target (checked with one trivial query)."""
    require_pyspark(target_name)
    if target.type == "databricks":
        return _databricks_session(target_name, target)
    token = _token(target_name, target.token_env)
    try:
        if target.remote.startswith("sc://"):
            from pyspark.sql import SparkSession

            _check_reachable(target_name, target.remote)
            builder = SparkSession.builder.remote(_connect_url(target, token))
            for key, value in target.spark_conf.items():
                builder = builder.config(key, value)
            session = builder.getOrCreate()
        else:
            # pyspark picks Spark Connect for every session of a process marked with these (a notebook,
            # or an earlier remote session: its stop() leaves them): local[N] asks for a classic one.
            for mark in ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE"):
                os.environ.pop(mark, None)
            session = _local_session(target, state_dir)
            session.sparkContext.setLogLevel("ERROR")
        session.sql("select 1").collect()
    except ConfigError:
        raise
    except Exception as exc:  # py4j / grpc errors: the first line says what happened
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ConfigError(f"target '{target_name}': cannot start Spark at {target.remote}: {first}",
                          path="project.yml",
                          hint="start the Spark Connect server (sbin/start-connect-server.sh) or fix remote:; "
                               "local[N] needs Java 17 (apt-get install openjdk-17-jre-headless)") from None
    if target.catalog:
        session.sql(f"use catalog `{target.catalog}`")
    _quiet_query_context_loggers()
    return session


def _quiet_query_context_loggers() -> None:
    """pyspark logs every failed query as a JSON stack trace; sqlsynth reports the error itself, once."""
    import logging

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        logging.getLogger(name).disabled = True


def _databricks_session(target_name: str, target: Any) -> Any:
    """Databricks Connect (databricks-connect package); untested against a live workspace."""
    token = _token(target_name, target.token_env)
    if not _installed("databricks.connect"):
        raise ConfigError(f"target '{target_name}' needs databricks-connect, which is not installed",
                          path="project.yml", hint="pip install databricks-connect")
    from databricks.connect import DatabricksSession

    builder = DatabricksSession.builder.host(target.host).token(token)
    builder = builder.serverless(True) if target.serverless else builder.clusterId(target.cluster_id)
    try:
        return builder.getOrCreate()
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ConfigError(f"target '{target_name}': cannot connect to {target.host}: {first}",
                          path="project.yml", hint="check host, cluster_id/serverless and the token") from None
