"""Loading a model once per process, model dir and device, and what the backend derives from it."""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..bundled import BUNDLED, LocalModelError, resolve_model_dir
from .grammar import GrammarTools
from .memory import MemoryShape
from .prefix import PrefixCaches


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    device: str
    dtype: Any
    context_window: int
    memory: MemoryShape  # per-token byte counts, for sizing batches
    weight_bytes: int  # parameters' bytes (a second model in the process shrinks the CPU batch budget)
    stop_ids: list[int]
    prefixes: PrefixCaches = field(default_factory=PrefixCaches)  # used under lock
    lock: threading.RLock = field(default_factory=threading.RLock)  # grammar() is called under it
    _grammar: Any = None  # GrammarTools, built on first structured request

    def grammar(self) -> GrammarTools:
        if self._grammar is None:  # built once; the lock only matters the first time
            with self.lock:
                if self._grammar is None:
                    vocab_size = self.model.get_output_embeddings().weight.shape[0]
                    self._grammar = GrammarTools(self.tokenizer, vocab_size, self.stop_ids)
        return self._grammar


_MODELS: dict[tuple[str, str], LoadedModel] = {}
_MODELS_LOCK = threading.Lock()


def loaded_models() -> list[LoadedModel]:
    with _MODELS_LOCK:
        return list(_MODELS.values())


def best_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def import_torch():
    """torch, imported with OMP_WAIT_POLICY=PASSIVE unless the user set it.

    With libgomp's default (spinning) wait policy, generation on a CPU shared with other busy
    processes was 8x slower with 2 threads than with 1 (measured on the 2-core dev box at load 7);
    passive waiting removes that collapse. Only effective if torch is not imported yet.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    _skip_triton_without_gpu(torch)
    return torch


def _skip_triton_without_gpu(torch) -> None:
    """Make ``import triton`` fail, as if it were not installed, on a machine without a CUDA GPU.

    xgrammar depends on triton (for its GPU kernels), and transformers imports torch._dynamo, which
    imports triton whenever it is installed: +95 MB of RSS (libtriton) for a CPU run that never uses
    it (measured, issue 14). torch and transformers treat a failing import as "no triton". Too late
    once something imported it; ``SQLSYNTH_KEEP_TRITON=1`` keeps it.
    """
    if "triton" in sys.modules or os.environ.get("SQLSYNTH_KEEP_TRITON") == "1":
        return
    if not torch.cuda.is_available():
        sys.modules["triton"] = None  # type: ignore[assignment]  # the import system's "not found"


def load_model(model_ref: str, device: str | None = None) -> LoadedModel:
    """The loaded model for a model reference, loading it on first use (thread-safe)."""
    import_torch()
    model_dir = resolve_model_dir(model_ref)
    device = best_device() if device in (None, "", "auto") else device
    key = (str(model_dir.resolve()), device)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = _load(model_dir, device)
        return _MODELS[key]


def _pick_dtype(device: str):
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32  # CPU: bf16 matmuls are slower than fp32 on most CPUs


def _load(model_dir: Path, device: str) -> LoadedModel:
    try:
        import torch  # noqa: F401  (fail here, with the install hint)
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise LocalModelError(f"the local model needs torch and transformers ({exc})",
                              hint="pip install 'sqlsynth[local]'") from None
    dtype = _pick_dtype(device)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # "Loading weights" bars would clutter the run's own progress
    try:
        model, tokenizer_dir = _load_weights(model_dir, dtype)
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        model.to(device).eval()
    except LocalModelError:
        raise
    except (RuntimeError, ValueError, OSError) as exc:
        hint = ("check the device (cpu, cuda, mps)" if "device" in str(exc).lower()
                else "is it a complete model saved with save_pretrained()?")
        raise LocalModelError(f"cannot load the model: {exc}", path=model_dir, hint=hint) from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    _prepare_tokenizer(tokenizer, model)
    config = model.config
    return LoadedModel(model=model, tokenizer=tokenizer, device=device, dtype=dtype,
                       context_window=_context_window(config),
                       memory=MemoryShape.of(config, dtype),
                       weight_bytes=sum(p.numel() * p.element_size() for p in model.parameters()),
                       stop_ids=_stop_ids(model, tokenizer))


def _load_weights(model_dir: Path, dtype):
    """A plain HF model dir, or a PEFT adapter merged into its base (training/ writes those)."""
    from transformers import AutoModelForCausalLM

    if (model_dir / "config.json").is_file():
        return AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype), model_dir
    adapter = json.loads((model_dir / "adapter_config.json").read_text())
    base_dir = resolve_model_dir(adapter.get("base_model_name_or_path") or "")
    try:
        from peft import PeftModel
    except ImportError:
        raise LocalModelError("this is a LoRA/PEFT adapter dir and peft is not installed", path=model_dir,
                              hint="pip install peft, or merge the adapter when training") from None
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype)
    merged = PeftModel.from_pretrained(base, model_dir).merge_and_unload()
    has_tokenizer = any((model_dir / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json"))
    return merged, (model_dir if has_tokenizer else base_dir)


# ChatML, used only when a model dir comes without a chat template (a base model).
_FALLBACK_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _prepare_tokenizer(tokenizer, model) -> None:
    tokenizer.padding_side = "left"  # decoder-only batching: prompts end where generation starts
    if tokenizer.pad_token_id is None:
        eos = tokenizer.eos_token_id
        if eos is None:
            eos = _first(model.generation_config.eos_token_id)
        tokenizer.pad_token_id = eos if eos is not None else 0
    if not tokenizer.chat_template:
        tokenizer.chat_template = _FALLBACK_CHAT_TEMPLATE


def _first(value):
    return value[0] if isinstance(value, (list, tuple)) and value else value


def _stop_ids(model, tokenizer) -> list[int]:
    ids = model.generation_config.eos_token_id
    ids = list(ids) if isinstance(ids, (list, tuple)) else ([ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def _context_window(config) -> int:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 2048


def model_revision(model_ref: str) -> str | None:
    """A short fingerprint of the model's files; None when the model is not there (yet)."""
    import hashlib

    try:
        if model_ref.lower() in BUNDLED:
            from importlib.metadata import version

            return f"{BUNDLED[model_ref.lower()].distribution}=={version(BUNDLED[model_ref.lower()].distribution)}"
        path = Path(model_ref).expanduser()
        files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    except Exception:
        return None
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        digest.update(f"{file.name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:12]


def encode_chat(tokenizer, messages) -> list[int]:
    """Prompt token ids: the chat template with the assistant turn opened."""
    text = tokenizer.apply_chat_template([dict(m) for m in messages], tokenize=False,
                                         add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]
