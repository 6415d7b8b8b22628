"""The training configuration: one dataclass whose fields carry their own help text.

The argparse parser is generated from the fields (so ``--help`` can never drift from the config),
and the resolved config (defaults that depend on other flags filled in) is printed at start and saved
next to the model as ``train_config.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path

from training.errors import TrainingError

BUNDLED_MODEL = "smollm2-135m-instruct"


def _opt(default, help: str, **extra):
    """A dataclass field with argparse metadata (help text, choices, aliases)."""
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class TrainConfig:
    # --- what to train on, and where to write ---
    training_dataset: str = _opt(None, "Chat JSONL ({\"messages\": [...]}) or Dolly instruction JSONL "
                                 "(instruction, context, response, category). Required.", required=True)
    local_output_dir: str = _opt(None, "Output directory: the merged model at its root, adapter/, "
                                 "checkpoints/, runs/ (TensorBoard), train.log, training_summary.json. Required.",
                                 required=True)
    input_model: str = _opt(BUNDLED_MODEL, "Model to fine-tune: a Hugging Face model directory, a .gguf file, "
                            f"or the bundled name '{BUNDLED_MODEL}'.")
    # --- schedule ---
    epochs: float = _opt(3.0, "Number of passes over the training split.")
    max_steps: int = _opt(-1, "Stop after this many optimizer steps (overrides --epochs when > 0).")
    per_device_train_batch_size: int = _opt(4, "Training sequences per device per forward pass.")
    per_device_eval_batch_size: int = _opt(4, "Evaluation sequences per device per forward pass.")
    gradient_accumulation_steps: int = _opt(1, "Forward passes accumulated into one optimizer step.")
    lr: float | None = _opt(None, "Peak learning rate (default: 2e-4 with --lora, 1e-5 for full fine-tuning).")
    warmup_steps: int = _opt(0, "Linear learning-rate warm-up steps.")
    logging_steps: int = _opt(10, "Log the training loss every N optimizer steps.")
    eval_steps: int = _opt(50, "Evaluate (eval loss + sample generations) every N optimizer steps.")
    save_steps: int = _opt(50, "Write a checkpoint every N optimizer steps.")
    save_total_limit: int = _opt(2, "Keep at most this many checkpoints (oldest deleted first).")
    seed: int = _opt(42, "Random seed for the split, shuffling, LoRA init and dropout.")
    # --- data ---
    test_size: float = _opt(0.1, "Held-out evaluation split: a fraction (< 1) or a number of records (>= 1); "
                            "0 disables evaluation.")
    max_seq_len: int = _opt(1024, "Maximum tokens per record after the chat template is applied.")
    overlong: str = _opt("truncate", "What to do with records longer than --max-seq-len: cut them at the limit, "
                         "or drop them. Counts are reported either way.", choices=("truncate", "drop"))
    # --- precision and memory ---
    bf16: bool = _opt(False, "Train in bfloat16 mixed precision (Ampere or newer GPUs).")
    gradient_checkpointing: bool = _opt(False, "Recompute activations in the backward pass: less memory, ~30%% slower.")
    deepspeed: str | None = _opt(None, "DeepSpeed JSON config, e.g. training/configs/zero2.json "
                                 "(its \"auto\" values are filled from these flags).")
    # --- LoRA ---
    lora: bool = _opt(False, "Train a LoRA adapter (peft) instead of all weights.")
    lora_r: int = _opt(16, "LoRA rank.")
    lora_alpha: int = _opt(32, "LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = _opt(0.05, "Dropout on the LoRA branch.")
    lora_targets: str = _opt("q_proj,k_proj,v_proj,o_proj", "Comma-separated module names to adapt, "
                             "or 'all-linear'.")
    merge_lora: bool = _opt(True, "Merge the LoRA adapter into the saved model (the adapter is kept in adapter/).")
    # --- run control and monitoring ---
    resume: bool = _opt(False, "Continue from the last checkpoint in --local-output-dir (after a kill or a crash).")
    num_sample_prompts: int = _opt(3, "Held-out prompts answered at each evaluation and written to the log.")
    sample_max_new_tokens: int = _opt(64, "Tokens generated per sample prompt.")
    estimate_steps: int = _opt(2, "Measured warm-up steps for the time estimate before training (0 skips it).")
    local_rank: int = _opt(-1, "Set by the deepspeed/torchrun launcher; do not pass it yourself.",
                           aliases=("--local_rank",))

    def __post_init__(self) -> None:
        # Defaults that depend on other flags are resolved here, once, so the printed config and the
        # saved train_config.json show the values training actually used (never a bare None).
        if self.lr is None:
            self.lr = 2e-4 if self.lora else 1e-5

    def lora_target_modules(self) -> str | list[str]:
        targets = [t.strip() for t in self.lora_targets.split(",") if t.strip()]
        return "all-linear" if targets == ["all-linear"] else targets

    def output_path(self) -> Path:
        return Path(self.local_output_dir)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        width = max(len(f.name) for f in dataclasses.fields(self))
        return "\n".join(f"  {k:<{width}} = {v}" for k, v in self.to_dict().items())

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def validate(self) -> None:
        """Refuse values that would only fail later, deep inside a library."""
        positive = ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
                    "logging_steps", "eval_steps", "save_steps", "save_total_limit", "max_seq_len", "lora_r")
        for name in positive:
            if getattr(self, name) < 1:
                raise TrainingError(f"--{_flag(name)} must be at least 1, got {getattr(self, name)}")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise TrainingError("nothing to train: --epochs must be > 0 or --max-steps set")
        if self.test_size < 0 or (self.test_size >= 1 and self.test_size != int(self.test_size)):
            raise TrainingError(f"--test-size must be a fraction in [0, 1) or a whole number of records, "
                                f"got {self.test_size}")
        if not 0 <= self.lora_dropout < 1:
            raise TrainingError(f"--lora-dropout must be in [0, 1), got {self.lora_dropout}")
        if self.lr is not None and self.lr <= 0:
            raise TrainingError(f"--lr must be positive, got {self.lr}")
        if self.deepspeed and not Path(self.deepspeed).is_file():
            raise TrainingError(f"DeepSpeed config not found: {self.deepspeed}",
                                hint="use one of training/configs/*.json or a path to your own")


def _flag(name: str) -> str:
    return name.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    """An argparse parser with one flag per TrainConfig field, help text from the field metadata."""
    parser = argparse.ArgumentParser(
        prog="python -m training.trainer",
        description="Fine-tune a causal LM on chat or Dolly-instruction JSONL (loss on assistant tokens only).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        meta = dict(f.metadata)
        names = [f"--{_flag(f.name)}", *meta.pop("aliases", ())]
        kind = _base_type(hints[f.name])
        kwargs = {"dest": f.name, "help": meta.pop("help"), **meta}
        if kind is bool:
            parser.add_argument(*names, action=argparse.BooleanOptionalAction, default=f.default, **kwargs)
        else:
            parser.add_argument(*names, type=kind, default=f.default, **kwargs)
    return parser


def _base_type(hint) -> type:
    """``float | None`` -> float; plain types pass through."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    args = build_parser().parse_args(argv)
    config = TrainConfig(**vars(args))
    config.validate()
    return config
