"""Fine-tune a causal LM on chat / Dolly JSONL: ``python -m training.trainer --help``.

Read top to bottom, a run is:
  1. parse and print the config (a dataclass; saved as train_config.json)
  2. read + validate the JSONL, split off the eval set, apply the chat template, mask non-assistant tokens
  3. load the model (bundled name, HF dir or GGUF), optionally wrap it with LoRA
  4. print the pre-training report (tokens, tokens × epochs, parameters, measured time estimate, warnings)
  5. train with transformers' Trainer (checkpoints, resume, DeepSpeed, TensorBoard, eval + samples)
  6. save the merged model + tokenizer (+ adapter) and training_summary.json

Data-parallel: ``torchrun --nproc_per_node N -m training.trainer ...`` (gloo on CPU, NCCL on GPUs) or
``deepspeed --module training.trainer --deepspeed training/configs/zero2.json ...``; rank 0 logs and saves.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import time

# Busy-waiting OpenMP threads make torch on 2 shared cores several times slower; set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from pathlib import Path

from sqlsynth.errors import SqlsynthError
from training.config import TrainConfig, parse_config
from training.errors import DatasetError, TrainingError

log = logging.getLogger("training")


def main(argv: list[str] | None = None) -> int:
    """CLI entry: user mistakes become one message on stderr and exit code 2, never a traceback."""
    try:
        config = parse_config(argv)
        train(config)
    except SqlsynthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: run again with --resume to continue from the last checkpoint", file=sys.stderr)
        return 130
    return 0


def train(config: TrainConfig) -> dict:
    """Run one fine-tuning job end to end; returns the training summary (also written to disk)."""
    started = time.time()
    out = config.output_path()
    setup_logging(out, is_main=is_main_process())
    resume_from = checkpoint_to_resume(config)
    log.info(f"training config\n{config.describe()}")

    from training.data import build_examples, read_records, sample_prompts, split_records
    from training.model import count_parameters, load_model, load_tokenizer, resolve_model_dir, save_outputs
    from training.report import format_report

    records = read_records(config.training_dataset)
    train_records, eval_records = split_records(records, config.test_size, config.seed)
    model_dir = resolve_model_dir(config.input_model)
    tokenizer = load_tokenizer(model_dir)
    train_examples, train_stats = build_examples(train_records, tokenizer, config.max_seq_len, config.overlong)
    eval_examples, eval_stats = build_examples(eval_records, tokenizer, config.max_seq_len, config.overlong)
    if not train_examples:
        raise DatasetError(f"all {len(train_records)} training records are longer than --max-seq-len "
                           f"{config.max_seq_len} before their first assistant token",
                           path=config.training_dataset, hint="raise --max-seq-len or use --overlong truncate")

    args = training_arguments(config, has_eval=bool(eval_examples))  # before the model: ZeRO-3 init needs it
    model = load_model(model_dir, config)
    trainer, callbacks = build_trainer(config, args, model, tokenizer, train_examples, eval_examples,
                                       sample_prompts(eval_records, config.num_sample_prompts))
    plan = plan_run(config, trainer, train_stats, eval_stats, count_parameters(model))
    if trainer.is_world_process_zero():
        out.mkdir(parents=True, exist_ok=True)
        config.save(out / "train_config.json")
    log.info(format_report(plan))
    if trainer.args.world_size > 1:
        log.info(f"data-parallel over {trainer.args.world_size} processes ({distributed_backend()}): "
                 f"each optimizer step sees {plan.sequences_per_step} sequences")

    result = trainer.train(resume_from_checkpoint=resume_from)
    final_eval = final_evaluation(trainer) if eval_examples else {}
    callbacks["tensorboard"].close()
    written = save_outputs(trainer, tokenizer, model_dir, config)
    summary = build_summary(config, plan, trainer, result, final_eval, callbacks, written, started)
    summary["resumed_from"] = resume_from
    if trainer.is_world_process_zero():
        (out / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        log.info(f"model saved to {written['model_dir']}  (serve it with provider: transformers, "
                 f"model: {written['model_dir']})")
    return summary


# ---------------------------------------------------------------- setup

def checkpoint_to_resume(config: TrainConfig) -> str | None:
    """The checkpoint --resume continues from; refuses to silently restart over an earlier run's checkpoints."""
    ckpt_dir = config.output_path() / "checkpoints"
    last, partial = latest_complete_checkpoint(ckpt_dir)
    if (last or partial) and not config.resume:
        name = (last or partial[0]).name
        raise TrainingError(f"{ckpt_dir} already holds {name} from an earlier run",
                            hint="pass --resume to continue it, or choose another --local-output-dir")
    if not config.resume:
        return None
    for path in partial:  # a kill during a save leaves a half-written checkpoint; its step is redone
        log.info(f"--resume: removing incomplete {path.name} (killed while it was being written)")
        if is_main_process():
            shutil.rmtree(path, ignore_errors=True)
    if last is None:
        log.info(f"--resume: no checkpoint in {ckpt_dir} yet, starting from the beginning")
    else:
        log.info(f"--resume: continuing from {last}")
    return str(last) if last else None


def latest_complete_checkpoint(ckpt_dir: Path) -> tuple[Path | None, list[Path]]:
    """(newest checkpoint whose trainer_state.json is readable, newer incomplete ones).

    The Trainer writes trainer_state.json last, so its presence marks a finished checkpoint.
    """
    if not ckpt_dir.is_dir():
        return None, []
    found = sorted((p for p in ckpt_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
                   key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    partial = []
    for path in found:
        try:
            json.loads((path / "trainer_state.json").read_text())
            return path, partial
        except (OSError, ValueError):
            partial.append(path)
    return None, partial


def is_main_process() -> bool:
    """Rank 0 of the whole job (launchers set RANK; --local_rank alone repeats on every node)."""
    return os.environ.get("RANK", "0") == "0"


def distributed_backend() -> str | None:
    """The process group's backend (gloo on CPU, nccl on GPUs) when launched by torchrun/deepspeed."""
    import torch.distributed as dist

    return dist.get_backend() if dist.is_available() and dist.is_initialized() else None


def setup_logging(out: Path, is_main: bool) -> None:
    """Log lines go to stdout and <out>/train.log, from the main process only."""
    log.handlers.clear()
    log.propagate = False
    log.setLevel(logging.INFO if is_main else logging.ERROR)
    if not is_main:
        return
    out.mkdir(parents=True, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    for handler in (logging.StreamHandler(sys.stdout), logging.FileHandler(out / "train.log")):
        handler.setFormatter(fmt)
        log.addHandler(handler)


def training_arguments(config: TrainConfig, has_eval: bool):
    """Map our flags onto transformers' TrainingArguments (which also fill DeepSpeed's "auto" values)."""
    import torch
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(config.output_path() / "checkpoints"),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.lr,
        warmup_steps=config.warmup_steps,
        logging_steps=config.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=config.eval_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        bf16=config.bf16,
        activation_checkpointing=config.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if config.gradient_checkpointing else None,
        deepspeed=config.deepspeed,
        ddp_find_unused_parameters=False,  # every trainable weight is used: skip DDP's extra graph walk
        seed=config.seed,
        data_seed=config.seed,
        use_cpu=not torch.cuda.is_available(),
        include_num_input_tokens_seen="non_padding",
        remove_unused_columns=False,  # our records are plain dicts already shaped for the collator
        report_to="none",  # TensorBoard is added explicitly, with its log dir under the output dir
        disable_tqdm=True,  # LogCallback prints one readable line per logging step instead
    )


def build_trainer(config, args, model, tokenizer, train_examples, eval_examples, prompts):
    from transformers import PrinterCallback, Trainer

    from training.callbacks import LogCallback, OverfitWatch, SampleGenerationCallback, TensorBoardLogs
    from training.data import ExampleDataset, PadCollator

    tensorboard = TensorBoardLogs(config.output_path() / "runs")
    callbacks = {
        "log": LogCallback(),
        "overfit": OverfitWatch(),
        "tensorboard": tensorboard,
        "samples": SampleGenerationCallback(tokenizer, prompts, config.sample_max_new_tokens, tensorboard),
    }
    trainer = Trainer(
        model=model,
        args=args,
        data_collator=PadCollator(tokenizer.pad_token_id),
        train_dataset=ExampleDataset(train_examples),
        eval_dataset=ExampleDataset(eval_examples) if eval_examples else None,
        processing_class=tokenizer,  # saved into every checkpoint, so a checkpoint is a usable model dir
        callbacks=list(callbacks.values()),
    )
    trainer.remove_callback(PrinterCallback)  # LogCallback prints the same, one readable line per step
    return trainer, callbacks


# ---------------------------------------------------------------- report and summary

def final_evaluation(trainer) -> dict:
    """The eval metrics at the last step: reused when the schedule already evaluated there."""
    evals = [h for h in trainer.state.log_history if "eval_loss" in h]
    if evals and evals[-1]["step"] == trainer.state.global_step:
        return evals[-1]
    return trainer.evaluate()


def plan_run(config, trainer, train_stats, eval_stats, params):
    from training.report import Plan, data_warnings, measure_tokens_per_s

    args = trainer.args
    sequences_per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    steps = config.max_steps if config.max_steps > 0 else math.ceil(
        train_stats.records / sequences_per_step * config.epochs)
    plan = Plan(train=train_stats, eval=eval_stats, epochs=steps * sequences_per_step / train_stats.records,
                optimizer_steps=steps, sequences_per_step=sequences_per_step,
                trainable_params=params[0], total_params=params[1])
    if not config.deepspeed:  # under DeepSpeed the engine is built in train(); LogCallback's ETA covers it
        if config.gradient_checkpointing:
            trainer.model.gradient_checkpointing_enable({"use_reentrant": False})
        plan.tokens_per_s = measure_tokens_per_s(trainer, config.estimate_steps)
    plan.warnings = data_warnings(plan)
    return plan


def build_summary(config, plan, trainer, result, final_eval, callbacks, written, started) -> dict:
    history = trainer.state.log_history
    train_losses = [(h["step"], h["loss"]) for h in history if "loss" in h]
    eval_losses = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h]
    runtime = result.metrics.get("train_runtime", 0.0)
    tokens_seen = trainer.state.num_input_tokens_seen - callbacks["log"].start_tokens  # this session only
    first, last = (train_losses[0][1], train_losses[-1][1]) if train_losses else (None, None)
    return {
        "config": config.to_dict(),
        "input_model": config.input_model,
        "outputs": written,
        "data": {
            "train": vars(plan.train), "eval": vars(plan.eval),
            "tokens_x_epochs": plan.planned_tokens, "trained_tokens_x_epochs": plan.planned_trained_tokens,
        },
        "parameters": {"trainable": plan.trainable_params, "total": plan.total_params},
        "distributed": {"world_size": trainer.args.world_size, "backend": distributed_backend()},
        "estimate": {"tokens_per_s": plan.tokens_per_s, "seconds": plan.estimated_seconds},
        "losses": {
            "first_train_loss": first, "final_train_loss": last,
            "train": train_losses, "eval": eval_losses,
            "final_eval_loss": final_eval.get("eval_loss"),
            "mean_train_loss": result.training_loss,
        },
        "samples": callbacks["samples"].history,
        "warnings": plan.warnings + callbacks["overfit"].warnings,
        "global_step": trainer.state.global_step,
        "tokens_seen": tokens_seen,
        "tokens_seen_total": trainer.state.num_input_tokens_seen,  # including sessions before a --resume
        "train_runtime_s": runtime,
        "tokens_per_s": tokens_seen / runtime if runtime else None,
        "wall_time_s": time.time() - started,
    }


if __name__ == "__main__":
    sys.exit(main())
