"""Training-loop overhead: training.trainer (transformers' Trainer + our callbacks) vs a plain PyTorch loop.

Same model, same LoRA (or full) setup, same records, same batch size, same number of optimizer
steps, same AdamW + linear schedule + grad clipping. Every record is cut to exactly --seq-len tokens
(no padding), so batch order cannot change the work. Prints tokens/s of both and the ratio.

    python bench/train_overhead.py [--model smollm2-135m-instruct] [--steps 12] [--seq-len 128] [--full]

On the GPU machine add --bf16 (autocast in the plain loop too). Reads real bank questions from
../shared/data/banking77 when present (synthetic text otherwise).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BANKING77 = ROOT.parent / "shared" / "data" / "banking77" / "train.csv"


def write_dataset(path: Path, n: int) -> None:
    """Chat records long enough that every one is truncated to --seq-len."""
    if BANKING77.is_file():
        with BANKING77.open() as f:
            rows = [(r["text"], r["category"]) for r in csv.DictReader(f)][:n]
    else:
        rows = [(f"question number {i} about my card?", "card") for i in range(n)]
    with path.open("w") as f:
        for text, label in rows:
            answer = f"This is about {label.replace('_', ' ')}. " + " ".join([text] * 40)
            f.write(json.dumps({"messages": [{"role": "user", "content": text},
                                             {"role": "assistant", "content": answer}]}) + "\n")


def config_for(args, data: Path, out: Path):
    from training.config import parse_config

    flags = ["--input-model", args.model, "--training-dataset", str(data), "--local-output-dir", str(out),
             "--max-steps", str(args.steps), "--per-device-train-batch-size", str(args.batch),
             "--max-seq-len", str(args.seq_len), "--test-size", "0", "--save-steps", str(10 * args.steps),
             "--logging-steps", "1", "--estimate-steps", "0", "--lr", "1e-4"]
    flags += [] if args.full else ["--lora"]
    flags += ["--bf16"] if args.bf16 else []
    return parse_config(flags)


def run_trainer(config) -> float:
    from training.trainer import train

    summary = train(config)
    return summary["tokens_per_s"]


def run_plain_loop(config) -> float:
    """The hand-written loop: what the Trainer does per step, nothing else."""
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    from training.data import ExampleDataset, PadCollator, build_examples, read_records
    from training.model import load_model, load_tokenizer, resolve_model_dir

    torch.manual_seed(config.seed)
    model_dir = resolve_model_dir(config.input_model)
    tokenizer = load_tokenizer(model_dir)
    examples, _ = build_examples(read_records(config.training_dataset), tokenizer, config.max_seq_len, "truncate")
    model = load_model(model_dir, config)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).train()
    dataset = ExampleDataset(examples)
    loader = DataLoader(dataset, batch_size=config.per_device_train_batch_size, collate_fn=PadCollator(0),
                        sampler=RandomSampler(dataset, generator=torch.Generator().manual_seed(config.seed)))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 - s / config.max_steps)
    tokens, start = 0, time.perf_counter()
    batches = iter(loader)
    for _ in range(config.max_steps):
        batch = {k: v.to(device) for k, v in next(batches).items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()  # the Trainer syncs on the loss at every logging step (--logging-steps 1)
        tokens += int(batch["attention_mask"].sum())
    if device.type == "cuda":
        torch.cuda.synchronize()
    return tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--repeats", type=int, default=1, help="alternate plain/trainer runs; best of each")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "bench.jsonl"
        write_dataset(data, args.steps * args.batch)
        plain, trainer = [], []
        for i in range(args.repeats):
            plain.append(run_plain_loop(config_for(args, data, Path(tmp) / f"plain{i}")))
            trainer.append(run_trainer(config_for(args, data, Path(tmp) / f"trainer{i}")))
    best_plain, best_trainer = max(plain), max(trainer)
    mode = "full" if args.full else "LoRA r=16 q/k/v/o"
    print(f"\n{args.model}, {mode}, batch {args.batch} x {args.seq_len} tokens, {args.steps} steps"
          f"{', bf16' if args.bf16 else ''}")
    print(f"  plain PyTorch loop   {best_plain:8.1f} tokens/s   (runs: {', '.join(f'{x:.1f}' for x in plain)})")
    print(f"  training.trainer     {best_trainer:8.1f} tokens/s   (runs: {', '.join(f'{x:.1f}' for x in trainer)})")
    print(f"  trainer / plain      {best_trainer / best_plain:8.3f}   (overhead {100 * (1 - best_trainer / best_plain):.1f}%,"
          " target < 15%)")


if __name__ == "__main__":
    main()
