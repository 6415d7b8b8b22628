"""Trainer callbacks: readable log lines with an ETA, sample generations at each eval, an overfitting watch.

Only the main process writes (``state.is_world_process_zero``); generation runs on every rank,
because under ZeRO-3 each rank holds a shard of the weights and all must take part.
"""

from __future__ import annotations

import logging
import time

from transformers import TrainerCallback
from transformers.integrations import TensorBoardCallback

log = logging.getLogger("training")


def _fmt_duration(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


class LogCallback(TrainerCallback):
    """One line per log event: step, losses, learning rate, and the time left measured so far."""

    def on_train_begin(self, args, state, control, **kwargs):
        # After --resume the state already counts the earlier session's steps and tokens.
        self.start_time, self.start_step = time.monotonic(), state.global_step
        self.start_tokens = state.num_input_tokens_seen

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        parts = [f"step {state.global_step}/{state.max_steps}"]
        for key in ("loss", "eval_loss", "learning_rate", "grad_norm", "train_loss"):
            if key in logs:
                parts.append(f"{key} {logs[key]:.4g}")
        done = state.global_step - self.start_step
        if 0 < done and state.global_step < state.max_steps:
            per_step = (time.monotonic() - self.start_time) / done
            parts.append(f"eta {_fmt_duration(per_step * (state.max_steps - state.global_step))}")
        log.info("  ".join(parts))


class TensorBoardLogs(TensorBoardCallback):
    """TensorBoard under <out>/runs, kept open past train end so the final evaluation is logged too."""

    def __init__(self, log_dir):
        super().__init__()
        self.logging_dir = str(log_dir)

    def on_train_end(self, args, state, control, **kwargs):
        if self.tb_writer:
            self.tb_writer.flush()  # closed by close() once the run's last eval is written

    def close(self):
        if self.tb_writer:
            self.tb_writer.close()
            self.tb_writer = None


class SampleGenerationCallback(TrainerCallback):
    """At each evaluation, answer a few held-out prompts and write them to the log and TensorBoard."""

    def __init__(self, tokenizer, prompts: list[tuple[list[dict], str]], max_new_tokens: int,
                 tensorboard: TensorBoardLogs | None = None):
        self.tokenizer, self.prompts, self.max_new_tokens = tokenizer, prompts, max_new_tokens
        self.tensorboard = tensorboard
        self.history: list[dict] = []

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        if not self.prompts or model is None:
            return
        answers = generate_answers(model, self.tokenizer, [p for p, _ in self.prompts], self.max_new_tokens)
        if not state.is_world_process_zero:
            return
        for i, ((prompt, reference), answer) in enumerate(zip(self.prompts, answers, strict=True), start=1):
            question = prompt[-1]["content"] if prompt else ""
            log.info(f"sample {i} @ step {state.global_step}\n  prompt:    {question!r}\n"
                     f"  generated: {answer!r}\n  reference: {reference!r}")
            self.history.append({"step": state.global_step, "prompt": question, "generated": answer})
            writer = self.tensorboard.tb_writer if self.tensorboard else None
            if writer is not None:
                writer.add_text(f"samples/{i}", f"**prompt:** {question}\n\n**generated:** {answer}\n\n"
                                        f"**reference:** {reference}", state.global_step)


def generate_answers(model, tokenizer, prompts: list[list[dict]], max_new_tokens: int) -> list[str]:
    """Greedy answers for chat prompts, batched with left padding (the layout decoder-only generation needs)."""
    import torch
    from transformers.integrations import is_deepspeed_zero3_enabled

    encoded = [tokenizer(tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True),
                         add_special_tokens=False)["input_ids"] for p in prompts]
    width = max(len(e) for e in encoded)
    device = next(model.parameters()).device
    ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(e)) + e for e in encoded], device=device)
    mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded], device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id, synced_gpus=is_deepspeed_zero3_enabled())
    finally:
        model.train(was_training)
    return [tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in out]


class OverfitWatch(TrainerCallback):
    """Warns when the eval loss rises while the train loss keeps falling: the model is memorising."""

    def __init__(self):
        self.train_losses: list[float] = []
        self.evals: list[tuple[int, float, float | None]] = []  # (step, eval loss, train loss at that time)
        self.warnings: list[str] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.train_losses.append(float(logs["loss"]))

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not metrics or "eval_loss" not in metrics:
            return
        train_now = self.train_losses[-1] if self.train_losses else None
        current = (state.global_step, float(metrics["eval_loss"]), train_now)
        if self.evals:
            warning = overfit_warning(self.evals[-1], current)
            if warning:
                self.warnings.append(warning)
                if state.is_world_process_zero:
                    log.warning(f"WARNING: {warning}")
        self.evals.append(current)


def overfit_warning(before: tuple[int, float, float | None], now: tuple[int, float, float | None]) -> str | None:
    step0, eval0, train0 = before
    step1, eval1, train1 = now
    if train0 is None or train1 is None or not (eval1 > eval0 and train1 < train0):
        return None
    return (f"eval loss rose {eval0:.4g} → {eval1:.4g} while train loss fell {train0:.4g} → {train1:.4g} "
            f"(steps {step0} → {step1}): the model is starting to memorise the training set; "
            f"prefer the checkpoint at step {step0}, fewer epochs, or more data")
