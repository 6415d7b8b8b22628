"""Find, load, adapt (LoRA) and save the model being fine-tuned."""

from __future__ import annotations

from pathlib import Path

from training.config import TrainConfig
from training.errors import TrainingError

# ---------------------------------------------------------------- resolving --input-model

def resolve_model_dir(name_or_path: str) -> Path:
    """A Hugging Face model directory for --input-model: the bundled name, a HF dir, or a .gguf file.

    The engine's resolver does the work (GGUF files are dequantised once into a cached safetensors
    dir), so the trainer and the ai_query local backend agree on what a model name means.
    """
    from sqlsynth.llm.bundled import resolve_model_dir as engine_resolve

    return Path(engine_resolve(name_or_path))


# ---------------------------------------------------------------- loading and adapting

def load_tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token_id is None:  # padding is masked out of attention and loss, any id works
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(model_dir: Path, config: TrainConfig):
    """The model in fp32 (mixed precision keeps fp32 master weights), LoRA-wrapped if asked."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise TrainingError(f"cannot load a causal language model from {model_dir}: {exc}",
                            hint="--input-model must be a decoder-only (causal LM) checkpoint") from None
    if config.gradient_checkpointing:
        model.config.use_cache = False  # the KV cache is useless in training and conflicts with recomputation
    if config.lora:
        model = add_lora(model, config)
    return model


def add_lora(model, config: TrainConfig):
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=config.lora_target_modules(), task_type="CAUSAL_LM")
    try:
        return get_peft_model(model, lora)
    except ValueError as exc:
        names = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ == "Linear"})
        raise TrainingError(f"--lora-targets {config.lora_targets!r} does not fit this model: {exc}",
                            hint=f"linear layers in this model: {', '.join(names)} (or use all-linear)") from None


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts; under ZeRO-3 a parameter's real size is in ds_numel."""
    trainable = total = 0
    for p in model.parameters():
        n = getattr(p, "ds_numel", None) or p.numel()
        total += n
        trainable += n if p.requires_grad else 0
    return trainable, total


# ---------------------------------------------------------------- saving

def save_outputs(trainer, tokenizer, model_dir: Path, config: TrainConfig) -> dict:
    """Write the final model: full fine-tune → root; LoRA → adapter/ and (by default) merged into root."""
    out = config.output_path()
    if not config.lora:
        trainer.save_model(str(out))
        written = {"model_dir": str(out)}
    else:
        adapter = out / "adapter"
        trainer.save_model(str(adapter))
        written = {"adapter_dir": str(adapter), "model_dir": str(adapter)}
        if trainer.is_world_process_zero():
            tokenizer.save_pretrained(adapter)
            if config.merge_lora:
                merge_adapter(model_dir, adapter, out)
                written["model_dir"] = str(out)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(out)
    return written


def merge_adapter(base_dir: Path, adapter_dir: Path, out: Path) -> None:
    """Merge from the saved adapter onto a fresh base copy: works the same after DeepSpeed sharding."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    unset_hf_deepspeed_config()  # training is over: ZeRO-3 must not partition this single-process copy
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    merged.save_pretrained(out)
