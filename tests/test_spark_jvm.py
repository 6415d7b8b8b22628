"""The in-process driver JVM's settings and its stderr filter, without starting Spark (fast).

The JVM itself is covered by the Spark modules: test_spark_engine (no incubator warning in a real
build's output) and test_spark_cli_errors (a JVM that cannot start still shows its own error)."""

import os
import threading

from sqlsynth.config import parse_project_config
from sqlsynth.targets.spark_jvm import INCUBATOR_WARNING, relay_stderr
from sqlsynth.targets.spark_session import LOCAL_DEFAULTS, local_conf


def conf_for(tmp_path, spark_conf=None):
    target = parse_project_config({"name": "p", "targets": {"s": {
        "type": "spark", "remote": "local[2]", "spark_conf": spark_conf or {}}}}).targets["s"]
    return local_conf(target, tmp_path / "spark")


def test_the_local_driver_keeps_its_small_defaults_and_quick_jvm(tmp_path):
    conf = conf_for(tmp_path)
    for key in ("spark.driver.memory", "spark.sql.shuffle.partitions"):
        assert conf[key] == LOCAL_DEFAULTS[key] == {"spark.driver.memory": "512m",
                                                    "spark.sql.shuffle.partitions": "2"}[key]
    assert conf["spark.master"] == "local[2]" and conf["spark.sql.catalogImplementation"] == "hive"
    java = conf["spark.driver.extraJavaOptions"].split()
    assert java[:2] == ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
    assert f"-Dderby.system.home={tmp_path / 'spark'}" in java
    assert (tmp_path / "spark" / "log4j2.properties").is_file()


def test_the_users_jvm_options_come_last_and_their_collector_replaces_ours(tmp_path):
    java = conf_for(tmp_path, {"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=4 -XX:+UseG1GC"})[
        "spark.driver.extraJavaOptions"].split()
    assert java[-2:] == ["-XX:TieredStopAtLevel=4", "-XX:+UseG1GC"]  # the later flag wins
    assert "-XX:+UseSerialGC" not in java  # two collectors would stop the JVM
    assert any(flag.startswith("-Dlog4j2.configurationFile=") for flag in java)  # still quiet
    java = conf_for(tmp_path, {"spark.driver.extraJavaOptions": "-Dx=1"})["spark.driver.extraJavaOptions"]
    assert java.startswith("-XX:TieredStopAtLevel=1 -XX:+UseSerialGC") and java.endswith("-Dx=1")


def test_the_stderr_filter_drops_only_the_incubator_warning(capfd):
    read_end, write_end = os.pipe()
    relay = threading.Thread(target=relay_stderr, args=(read_end,))
    relay.start()
    lines = [INCUBATOR_WARNING + b"\n", b"Error: Could not create the Java Virtual Machine.\n",
             b"WARNING: Using incubator modules: jdk.incubator.foreign\n", b"spark: ERROR Executor: boom\n",
             b"no newline at the end"]
    for line in lines:
        os.write(write_end, line)
    os.close(write_end)
    relay.join(10)
    assert not relay.is_alive()
    assert capfd.readouterr().err.encode() == b"".join(lines[1:])
