"""The pre-training report: how much data, how much training, how many parameters, how long.

The source's rule of thumb: think in tokens × epochs, not rows. Too few tokens for the number of
trainable parameters ("data size << parameters") over-fits; the estimate comes from a few measured
forward/backward passes on the real device, not from a guess.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

from training.data import TokenStats


@dataclass
class Plan:
    train: TokenStats
    eval: TokenStats
    epochs: float
    optimizer_steps: int
    sequences_per_step: int
    trainable_params: int
    total_params: int
    tokens_per_s: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def planned_tokens(self) -> int:
        """Tokens the run will push through the model (epochs, or --max-steps worth of sequences)."""
        avg = self.train.tokens / max(self.train.records, 1)
        return int(self.optimizer_steps * self.sequences_per_step * avg)

    @property
    def planned_trained_tokens(self) -> int:
        """Assistant (loss-bearing) tokens over the whole run."""
        return int(self.planned_tokens * self.train.trained_tokens / max(self.train.tokens, 1))

    @property
    def estimated_seconds(self) -> float | None:
        return self.planned_tokens / self.tokens_per_s if self.tokens_per_s else None


def data_warnings(plan: Plan) -> list[str]:
    warnings = []
    if plan.planned_trained_tokens < plan.trainable_params:
        warnings.append(
            f"tokens × epochs on assistant turns ({plan.planned_trained_tokens:,}) is below the trainable "
            f"parameters ({plan.trainable_params:,}): data size << parameters, the model can memorise this "
            f"data (overfitting risk). Add data, train fewer epochs or a smaller adapter (--lora, lower "
            f"--lora-r), and watch the eval loss.")
    if plan.eval.records == 0:
        warnings.append("no evaluation split (--test-size 0 or a single record): eval loss, samples and the "
                        "overfitting watch are off")
    return warnings


def format_report(plan: Plan) -> str:
    t, e = plan.train, plan.eval
    pct = 100 * plan.trainable_params / max(plan.total_params, 1)
    lines = [
        "pre-training report",
        f"  records           train {t.records:,}  eval {e.records:,}  "
        f"(truncated {t.truncated + e.truncated}, dropped {t.dropped + e.dropped} over --max-seq-len)",
        f"  dataset tokens    {t.tokens:,} train ({t.trained_tokens:,} on assistant turns), {e.tokens:,} eval",
        f"  tokens × epochs   {plan.planned_tokens:,} ({plan.planned_trained_tokens:,} trained) over "
        f"{plan.optimizer_steps:,} optimizer steps ({plan.epochs:g} epochs)",
        f"  parameters        {plan.trainable_params:,} trainable of {plan.total_params:,} ({pct:.2f}%)",
    ]
    if plan.estimated_seconds is not None:
        lines.append(f"  estimated time    {_duration(plan.estimated_seconds)} at {plan.tokens_per_s:,.0f} tokens/s "
                     "(measured warm-up; evaluation not included)")
    else:
        lines.append("  estimated time    printed after the first logged steps (no warm-up measured)")
    lines += [f"  WARNING: {w}" for w in plan.warnings]
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def measure_tokens_per_s(trainer, steps: int) -> float | None:
    """Time ``steps`` forward+backward passes on real training batches; gradients are discarded.

    The first pass is run untimed when there are more than one (allocator and kernel warm-up).
    """
    import torch

    if steps <= 0:
        return None
    model, args = trainer.model, trainer.args
    # A plain loader, not trainer.get_train_dataloader(): that one is registered with accelerate and
    # would become part of the checkpointed state.
    loader = torch.utils.data.DataLoader(trainer.train_dataset, batch_size=args.per_device_train_batch_size,
                                         collate_fn=trainer.data_collator)
    batches = list(itertools.islice(loader, steps + (1 if steps > 1 else 0)))
    timed_tokens, timed = 0, 0.0
    model.train()
    for i, batch in enumerate(batches):
        batch = {k: v.to(args.device) for k, v in batch.items()}
        start = time.perf_counter()
        with torch.autocast(args.device.type, dtype=torch.bfloat16, enabled=args.bf16):
            model(**batch).loss.backward()
        if args.device.type == "cuda":
            torch.cuda.synchronize()
        if i > 0 or len(batches) == 1:
            timed += time.perf_counter() - start
            timed_tokens += int(batch["attention_mask"].sum())
    model.zero_grad(set_to_none=True)
    return timed_tokens / timed if timed > 0 else None
