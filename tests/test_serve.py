"""Live access: another process reads the database through Quack while sqlsynth holds (and writes) it."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llm_support import stub

pytest.importorskip("duckdb_extension_quack", reason="needs the duckdb-extension-quack package")

ROOT = Path(__file__).parents[1]
ENV = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": os.pathsep.join(
    [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}

# Runs in a separate process: attach with a token, read, try to write, try a wrong token.
CLIENT = textwrap.dedent("""
    import json, sys, time
    import duckdb
    from sqlsynth.serve import extension_file

    uri, token, wait_for_calls = sys.argv[1], sys.argv[2], sys.argv[3] == "1"

    def attach(secret):
        con = duckdb.connect()
        for package, name in (("duckdb_extension_quack", "quack"), ("duckdb_extension_httpfs", "httpfs")):
            con.execute(f"LOAD '{extension_file(package, package, name)}'")
        con.execute(f"CREATE SECRET (TYPE quack, TOKEN '{secret}')")
        con.execute(f"ATTACH '{uri}' AS live")
        return con

    def refused(con, sql):
        try:
            con.execute(sql)
        except duckdb.Error as exc:
            return str(exc)
        return None

    con = attach(token)
    out = {"first": con.execute("select id, word from live.first").fetchall()}
    deadline = time.monotonic() + 30
    # Quack 1.5.5 drops the schema of live.<schema>.<table>: other schemas are read by a pass-through query
    calls = "from quack_query_by_name('live', 'select count(*) from sqlsynth.calls')"
    while wait_for_calls:  # the call log fills as ai_query answers arrive
        out["calls"] = con.execute(calls).fetchone()[0]
        if out["calls"] > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    out["insert"] = refused(con, "insert into live.first values (2, 'no')")
    out["create"] = refused(con, "create table live.intruder as select 1 as x")
    out["passthrough"] = refused(con, "from quack_query_by_name('live', 'drop table first')")
    # the project's Python UDFs run only in sqlsynth's own queries (ai_query calls cost money)
    out["udf"] = refused(con, "from quack_query_by_name('live', 'select shout(word) from first')")
    out["builtin"] = con.execute("from quack_query_by_name('live', 'select upper(word) from first')").fetchall()
    out["after"] = con.execute("select count(*) from live.first").fetchone()[0]
    try:
        attach("not-the-token")
        out["wrong_token"] = None
    except duckdb.Error as exc:
        out["wrong_token"] = str(exc)
    print(json.dumps(out))
""")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def _project(root: Path, url: str, port: int) -> Path:
    files = {
        "project.yml": f"name: proj\nthreads: 1\nserve:\n  port: {port}\nendpoints:\n  t:\n    provider: openai\n"
                       f"    base_url: {url}\n    model: stub\n    max_concurrency: 1\n",
        "udfs/shout.py": "from sqlsynth import udf\n\n\n@udf\ndef shout(s: str) -> str:\n"
                         "    return s.upper() + '!'\n",
        "models/first.sql": "{{ config(materialized='table') }}\nselect 1 as id, 'hello' as word",
        # 12 calls one at a time against a server answering in 1 s: the build lasts 12 s or more
        "models/slow.sql": "{{ config(materialized='table') }}\nselect i, ai_query('t', 'question ' || i) as answer\n"
                           "from range(12) r(i), {{ ref('first') }}",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _sqlsynth(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sqlsynth", *args], env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _attach_lines(proc: subprocess.Popen) -> tuple[str, str, list[str]]:
    """The URI and token from the lines the serving process prints once."""
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        if "ATTACH '" in line:
            token = re.search(r"TOKEN '([^']+)'", "".join(seen)).group(1)
            return re.search(r"ATTACH '([^']+)'", line).group(1), token, seen
    raise AssertionError("no ATTACH line printed:\n" + "".join(seen))


def _client(uri: str, token: str, wait_for_calls: bool) -> dict:
    done = subprocess.run([sys.executable, "-c", CLIENT, uri, token, "1" if wait_for_calls else "0"], env=ENV,
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _check_read_only(seen: dict) -> None:
    assert seen["first"] == [[1, "hello"]]
    assert all("Authorization failed" in seen[write] for write in ("insert", "create", "passthrough", "udf"))
    assert seen["builtin"] == [["HELLO"]]
    assert seen["after"] == 1
    assert seen["wrong_token"] is not None


def test_a_second_process_reads_tables_and_the_call_log_during_a_serve_build(tmp_path):
    with stub(latency_s=1.0) as server:
        root = _project(tmp_path / "proj", server.url, _free_port())
        build = _sqlsynth("build", "--serve", "--project-dir", str(root))
        try:
            uri, token, printed = _attach_lines(build)
            assert "CREATE SECRET (TYPE quack" in "".join(printed)
            seen = _client(uri, token, wait_for_calls=True)
            assert build.poll() is None, "the build ended before the client read: make it slower"
        finally:
            out, err = build.communicate(timeout=120)
        assert build.returncode == 0, out + err
    assert seen["calls"] > 0
    _check_read_only(seen)
    assert server.stats.requests == 12  # nothing the client did reached the model


def test_serve_command_serves_a_built_database_until_ctrl_c(tmp_path, cli):
    root = _project(tmp_path / "proj", "http://127.0.0.1:9/v1", _free_port())
    (root / "models/slow.sql").unlink()
    assert cli("build", "--project-dir", str(root)).returncode == 0
    served = _sqlsynth("serve", "--project-dir", str(root))
    try:
        uri, token, _printed = _attach_lines(served)
        _check_read_only(_client(uri, token, wait_for_calls=False))
    finally:
        served.send_signal(signal.SIGINT)
        out, err = served.communicate(timeout=60)
    assert served.returncode == 0, out + err
    assert "Stopped serving" in err


def test_a_taken_port_is_one_short_message(tmp_path, cli):
    root = _project(tmp_path / "proj", "http://127.0.0.1:9/v1", _free_port())
    (root / "models/slow.sql").unlink()
    assert cli("build", "--project-dir", str(root)).returncode == 0
    with socket.socket() as taken:
        taken.bind(("localhost", 0))
        taken.listen()
        port = taken.getsockname()[1]
        served = cli("serve", "--port", str(port), "--project-dir", str(root))
        (root / "project.yml").write_text((root / "project.yml").read_text()
                                          .replace("serve:\n  port: ", f"serve:\n  during_runs: true\n  port: {port}  #"))
        built = cli("build", "--project-dir", str(root))
    for result in (served, built):
        output = result.stdout + result.stderr
        assert result.returncode == 2 and "Traceback" not in output, output
        assert f"cannot serve on localhost:{port}" in output and "--port" in output


def test_serve_without_a_database_says_to_build_first(tmp_path, cli):
    root = _project(tmp_path / "proj", "http://127.0.0.1:9/v1", _free_port())
    result = cli("serve", "--project-dir", str(root))
    assert result.returncode == 2 and "sqlsynth build" in result.stderr and "Traceback" not in result.stderr


def test_token_env_that_is_not_set_is_a_config_error(tmp_path, cli):
    root = _project(tmp_path / "proj", "http://127.0.0.1:9/v1", _free_port())
    (root / "models/slow.sql").unlink()
    (root / "project.yml").write_text((root / "project.yml").read_text()
                                      .replace("serve:\n", "serve:\n  token_env: SQLSYNTH_TEST_UNSET_TOKEN\n"))
    result = cli("build", "--serve", "--project-dir", str(root), env={"SQLSYNTH_TEST_UNSET_TOKEN": ""})
    assert result.returncode == 2 and "SQLSYNTH_TEST_UNSET_TOKEN" in result.stderr, result.stderr
