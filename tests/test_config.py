from pathlib import Path

import pytest

from sqlsynth.config import load_project_config
from sqlsynth.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "project.yml").write_text(text)
    return tmp_path


def test_defaults_and_aliases(tmp_path):
    (tmp_path / "m").mkdir()
    config = load_project_config(write(tmp_path, "name: p\nmodel-paths: [m]\nvars: {a: 1}\n"))
    assert config.model_paths == ["m"]
    assert config.seed_paths == ["seeds"]
    assert config.vars == {"a": 1}
    assert config.threads >= 1


def test_malformed_yaml_names_line(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_project_config(write(tmp_path, "name: p\nvars:\n  a: [1, 2\n  b: 3\n"))
    assert info.value.path == "project.yml"
    assert info.value.line in (3, 4)
    assert "malformed YAML" in str(info.value)


def test_unknown_key_names_line_and_suggests(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_project_config(write(tmp_path, "name: p\nversion: '1'\nthreds: 4\n"))
    assert info.value.line == 3
    assert "unknown key 'threds'" in info.value.message
    assert "did you mean 'threads'" in info.value.hint


def test_unknown_endpoint_key(tmp_path):
    text = "name: p\nendpoints:\n  teacher:\n    provider: openai\n    model: m\n    base_ur: http://x\n"
    with pytest.raises(ConfigError) as info:
        load_project_config(write(tmp_path, text))
    assert info.value.line == 6
    assert "base_url" in info.value.hint


def test_env_interpolation(tmp_path, monkeypatch):
    monkeypatch.setenv("SQLSYNTH_TEST_URL", "http://127.0.0.1:9/v1")
    text = ("name: p\ndatabase: ${SQLSYNTH_DB:-target/x.duckdb}\nendpoints:\n  t:\n    provider: openai\n"
            "    model: m\n    base_url: ${SQLSYNTH_TEST_URL}\n")
    config = load_project_config(write(tmp_path, text))
    assert config.endpoints["t"].base_url == "http://127.0.0.1:9/v1"
    assert config.database == "target/x.duckdb"


def test_missing_env_var(tmp_path, monkeypatch):
    monkeypatch.delenv("SQLSYNTH_NOPE", raising=False)
    with pytest.raises(ConfigError) as info:
        load_project_config(write(tmp_path, "name: p\nvars:\n  key: ${SQLSYNTH_NOPE}\n"))
    assert info.value.line == 3
    assert "SQLSYNTH_NOPE" in info.value.message


def test_bad_value_type(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_project_config(write(tmp_path, "name: p\nthreads: many\n"))
    assert info.value.line == 2
    assert "threads" in info.value.message


def test_missing_project_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_project_config(tmp_path)
    assert "sqlsynth init" in info.value.hint


def test_local_model_dir_relative_to_project(tmp_path):
    (tmp_path / "target" / "student").mkdir(parents=True)
    text = ("name: p\nendpoints:\n  student:\n    provider: transformers\n    model: target/student\n"
            "  bundled:\n    provider: transformers\n    model: smollm2-135m-instruct\n")
    config = load_project_config(write(tmp_path, text))
    assert config.endpoints["student"].model == str((tmp_path / "target" / "student").resolve())
    assert config.endpoints["bundled"].model == "smollm2-135m-instruct"


def test_memory_limit(tmp_path):
    assert load_project_config(write(tmp_path, "name: p\nmemory_limit: 150MB\n")).memory_limit == "150MB"
    with pytest.raises(ConfigError) as info:
        load_project_config(write(tmp_path, "name: p\nmemory_limit: lots\n"))
    assert info.value.line == 2


def test_duplicate_key_is_an_error(tmp_path):
    text = "name: p\nendpoints:\n  a:\n    provider: openai\n    model: m\nendpoints:\n  b:\n    provider: openai\n    model: m\n"
    with pytest.raises(ConfigError) as info:
        load_project_config(write(tmp_path, text))
    assert info.value.line == 6 and "duplicate key 'endpoints' (first on line 2)" in info.value.message
