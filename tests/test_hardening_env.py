"""Issue 13 item 7: a full disk, a read-only target/ and a read-only database file are one message
naming the path and the fix (exit 2), never an internal error; once space is freed the next build works.

Real file systems, not mocks: each case runs the CLI inside a private mount namespace
(`unshare --map-root-user --mount`) over a small tmpfs, so nothing outside the test is mounted. Where
user namespaces are not allowed (some CI containers) the cases are skipped, saying why.
"""

import os
import shutil
import subprocess
import sys

import pytest

from conftest import write_file


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--map-root-user", "--mount", "sh", "-c",
                            "d=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs $d && umount $d && rmdir $d"],
                           capture_output=True)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not _namespaces_work(),
                                reason="needs unshare --map-root-user --mount and tmpfs (user namespaces)")

# an md5 per row does not compress: 150,000 rows take ~6 MB in the database file
BIG = "{{ config(materialized='table') }}\nselect i, md5(i::varchar) || md5((i + 1)::varchar) as s from range(150000) t(i)"


def _in_namespace(root, script: str) -> subprocess.CompletedProcess:
    """Run a shell script in a private mount namespace; `sqlsynth` there is the real CLI."""
    prelude = f'sqlsynth() {{ "{sys.executable}" -m sqlsynth "$@"; }}\ncd "{root}"\n'
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(["unshare", "--map-root-user", "--mount", "bash", "-c", prelude + script],
                          capture_output=True, text=True, env=env, timeout=300)


def _section(output: str, name: str) -> str:
    return output.split(f"=== {name}\n", 1)[1].split("\n=== ", 1)[0]


def test_disk_full_is_one_message_and_the_next_build_works_once_space_is_freed(small):
    write_file(small, "models/big.sql", "select 1 as i")
    result = _in_namespace(small, f"""
        rm -rf target && mkdir target && mount -t tmpfs -o size=12m tmpfs target
        sqlsynth build > /dev/null 2>&1 || echo "first build failed"
        head -c $(( $(df --output=avail -B1 target | tail -1) - 1500000 )) /dev/zero > target/filler
        cat > models/big.sql <<'SQL'
{BIG}
SQL
        echo "=== full"; sqlsynth build 2>&1; echo "rc=$?"
        rm target/filler
        echo "=== freed"; sqlsynth build 2>&1; echo "rc=$?"
        echo "=== rows"; sqlsynth show --inline "select (select count(*) from {{{{ ref('b') }}}}) as b, (select count(*) from {{{{ ref('big') }}}}) as big" --output csv
        umount target
        """)
    out = result.stdout
    assert "first build failed" not in out, result.stderr
    full = _section(out, "full")
    # the node that hit the full disk fails (exit 1), or writing an artifact does (exit 2)
    assert ("rc=1" in full or "rc=2" in full) and "No space left on device" in full, full
    assert "free disk space" in full, full
    assert "/target/" in full and "Traceback" not in full and "Internal error" not in full, full
    assert "rc=0" in _section(out, "freed"), out
    assert _section(out, "rows").split() == ["b,big", "2,150000"], out


def test_read_only_target_folder_names_it(small):
    result = _in_namespace(small, """
        mkdir -p /tmp/sqlsynth-ro-copy-$$ && cp -r target/. /tmp/sqlsynth-ro-copy-$$/
        mount -t tmpfs -o size=16m tmpfs target && cp -r /tmp/sqlsynth-ro-copy-$$/. target/
        rm -rf /tmp/sqlsynth-ro-copy-$$ && mount -o remount,ro target
        echo "=== build"; sqlsynth build 2>&1; echo "rc=$?"
        echo "=== show"; sqlsynth show b --output csv 2>&1; echo "rc=$?"
        umount target
        """)
    build = _section(result.stdout, "build")
    assert "rc=2" in build and "target/manifest.json" in build and "Read-only file system" in build, build
    assert "pass a writable --target-path" in build and "Traceback" not in build, build
    assert _section(result.stdout, "show").split() == ["id", "2", "4", "rc=0"], result.stdout


def test_read_only_database_file_names_it(small):
    write_file(small, "project.yml", "name: small\ndatabase: dbdir/small.duckdb\n")
    result = _in_namespace(small, """
        mkdir dbdir && mount -t tmpfs -o size=16m tmpfs dbdir && cp target/small.duckdb dbdir/
        mount -o remount,ro dbdir
        echo "=== build"; sqlsynth build 2>&1; echo "rc=$?"
        echo "=== show"; sqlsynth show b --output csv 2>&1; echo "rc=$?"
        umount dbdir
        """)
    build = _section(result.stdout, "build")
    assert "rc=2" in build and "dbdir/small.duckdb" in build and "cannot open database" in build, build
    assert "not writable" in build and "Traceback" not in build and "Internal error" not in build, build
    assert _section(result.stdout, "show").split() == ["id", "2", "4", "rc=0"], result.stdout
