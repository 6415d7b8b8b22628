"""Issue 13 item 4: a secret read through any secret-bearing route is masked everywhere sqlsynth prints
or writes: console, target/ files (compiled SQL, manifest, run_results), the DuckDB file (call log,
cache parameters) — checked by grepping every file's bytes and every string in the database."""

import duckdb
import pytest

from conftest import run_cli, write_file
from llm_support import stub

SECRETS = {
    "HARDEN_API_KEY": "sk-live-KEYVALUE-0001",       # api_key_env
    "HARDEN_URL_PASSWORD": "pw-SECRET-0002",         # user-info in base_url
    "HARDEN_URL_QUERY": "q-SECRET-0003",             # ?api-key= in base_url
    "HARDEN_BODY_TOKEN": "body-SECRET-0004",         # an endpoint parameter
    "HARDEN_MODEL_SECRET": "model-SECRET-0005",      # env_var('X', secret=true) in a model
    "DBT_ENV_SECRET_HARDEN": "dbt-SECRET-0006",      # dbt's prefix convention
}


def _project(root, port):
    write_file(root, "project.yml", f"""
        name: small
        endpoints:
          teacher:
            provider: openai
            base_url: http://127.0.0.1:{port}/v1?api-key=${{HARDEN_URL_QUERY}}
            api_key_env: HARDEN_API_KEY
            model: stub
            max_retries: 0
            parameters:
              extra_body: {{session: "${{HARDEN_BODY_TOKEN}}"}}
          proxy:
            provider: openai
            base_url: http://bob:${{HARDEN_URL_PASSWORD}}@127.0.0.1:{port}/v1
            model: stub
        """)
    write_file(root, "models/gen.sql", """
        {{ config(materialized='table') }}
        select i, ai_query('teacher', 'q ' || i, failOnError => false) as r,
               length('{{ env_var("HARDEN_MODEL_SECRET", secret=true) }}') as n
        from range(3) t(i)
        """)
    write_file(root, "models/bad_cast.sql", """
        {{ config(materialized='table') }}
        select cast('{{ env_var("DBT_ENV_SECRET_HARDEN") }} {{ env_var("HARDEN_URL_PASSWORD") }}' as int) as x
        """)
    write_file(root, "models/secret_view.sql", """
        select '{{ env_var("HARDEN_MODEL_SECRET", secret=true) }}' as s
        """)


def _database_strings(path):
    """Every string the database holds: table cells and view definitions."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        texts = [row[0] for row in con.execute("select sql from duckdb_views() where not internal").fetchall()]
        for schema, table in con.execute("select schema_name, table_name from duckdb_tables()").fetchall():
            rows = con.execute(f'select * from "{schema}"."{table}"').fetchall()
            texts += [str(value) for row in rows for value in row]
        return "\n".join(texts)
    finally:
        con.close()


@pytest.fixture(scope="module")
def leaked(tmp_path_factory):
    """Run the project against a stub that rejects the key (errors quote the URL); return a finder."""
    tmp_path = tmp_path_factory.mktemp("secrets")
    with stub(always_status=401) as server:
        _project(tmp_path, server.url.split(":")[-1].split("/")[0])
        result = run_cli("run", cwd=tmp_path, env=SECRETS)
        compiled = run_cli("compile", "-s", "gen", cwd=tmp_path, env=SECRETS)
    files = {p: p.read_bytes() for p in (tmp_path / "target").rglob("*") if p.is_file()}
    database = _database_strings(tmp_path / "target/small.duckdb")

    def find(secret):
        places = [str(p.relative_to(tmp_path)) for p, data in files.items() if secret.encode() in data]
        for name, text in (("console", result.stdout + result.stderr + compiled.stdout + compiled.stderr),
                           ("database", database)):
            if secret in text:
                places.append(name)
        return places
    return result, find


@pytest.mark.parametrize("variable", list(SECRETS))
def test_secret_is_masked_everywhere(leaked, variable):
    _result, find = leaked
    assert find(SECRETS[variable]) == []


def test_the_run_still_reports_what_happened(leaked):
    result, _find = leaked
    output = result.stderr
    assert result.returncode == 1 and "Traceback" not in output
    assert "HTTP 40" in output and "/v1?api-key=***" in output  # the failing URL, its key masked
    assert "Could not convert string '*** ***'" in output  # a model reading an endpoint's secret
    assert "models/secret_view.sql" in output and "materialize it as a table" in output
