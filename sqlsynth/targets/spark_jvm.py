"""Launch the in-process Spark driver JVM (``remote: local[N]``) with its stderr passed through a filter.

Spark 4's launcher adds ``--add-modules=jdk.incubator.vector`` to every driver command line
(``JavaModuleOptions``, for MLlib's vectorized BLAS, which sqlsynth never calls), so the JVM prints
``WARNING: Using incubator modules: jdk.incubator.vector`` at each start, and no JVM flag turns that line
off. The JVM is launched the way pyspark launches it (spark-submit, the same --conf list) but with its
stderr on a pipe: that one line is dropped, everything else (the launcher's and the JVM's own errors,
log4j's ERROR lines, Python worker tracebacks) is copied to this process's stderr as it comes.
"""

from __future__ import annotations

import os
import threading
from typing import Any

INCUBATOR_WARNING = b"WARNING: Using incubator modules: jdk.incubator.vector"
_FLUSH_S = 2.0  # how long a failed launch waits for the JVM's last words before sqlsynth reports it


def launch_driver(conf: dict[str, str]) -> None:
    """Start this process's driver JVM unless pyspark already has one (an earlier session, a notebook's)."""
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ:
        return
    read_end, write_end = os.pipe()
    relay = threading.Thread(target=relay_stderr, args=(read_end,), name="spark-jvm-stderr", daemon=True)
    relay.start()
    try:
        gateway = launch_gateway(SparkConf().setAll(conf.items()), popen_kwargs={"stderr": write_end})
    except Exception:
        os.close(write_end)
        relay.join(_FLUSH_S)  # the launcher's own message (no Java, a bad JVM option) comes first
        raise
    os.close(write_end)  # the JVM holds its own copy; the relay ends when the JVM does
    SparkContext._ensure_initialized(gateway=gateway)


def relay_stderr(read_end: int) -> None:
    """Copy the JVM's stderr pipe to ours line by line, less the incubator warning, until the JVM closes it."""
    with open(read_end, "rb") as source, open(2, "wb", closefd=False) as sink:
        for line in source:
            if line.rstrip(b"\r\n") != INCUBATOR_WARNING:
                _write(sink, line)


def _write(sink: Any, line: bytes) -> None:
    try:
        sink.write(line)
        sink.flush()
    except OSError:  # stderr closed (the terminal went away): the JVM must not block on a full pipe
        pass
