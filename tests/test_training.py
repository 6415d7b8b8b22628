"""Fast tests of training/: a tiny random Llama built offline, a few steps, seconds in all."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from training.config import TrainConfig, build_parser, parse_config
from training.data import IGNORE, Record, build_examples, read_records, split_records, tokenize_conversation
from training.errors import DatasetError, TrainingError

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "training"
CHAT = FIXTURES / "chat.jsonl"
DOLLY = FIXTURES / "dolly.jsonl"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from training.testing import build_tiny_model_dir

    texts = CHAT.read_text().splitlines() + DOLLY.read_text().splitlines()
    return build_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model", texts)


@pytest.fixture(scope="session")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training.trainer", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


def write(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def chat_line(*turns: tuple[str, str]) -> str:
    return json.dumps({"messages": [{"role": r, "content": c} for r, c in turns]})


# ---------------------------------------------------------------- config and flags

def test_help_documents_every_config_field():
    result = run_cli("--help", timeout=60)
    assert result.returncode == 0, result.stderr
    for f in dataclasses.fields(TrainConfig):
        assert f"--{f.name.replace('_', '-')}" in result.stdout, f.name
    text = " ".join(result.stdout.split())  # undo argparse's line wrapping
    assert "loss on assistant tokens only" in text
    assert "Peak learning rate (default: 2e-4 with --lora" in text


def test_flags_parse_into_the_dataclass():
    config = parse_config(["--training-dataset", "d.jsonl", "--local-output-dir", "out", "--lora", "--lr", "3e-4",
                           "--no-merge-lora", "--test-size", "5", "--local_rank=0", "--overlong", "drop"])
    assert (config.lora, config.merge_lora, config.lr, config.test_size) == (True, False, 3e-4, 5.0)
    assert config.local_rank == 0 and config.overlong == "drop"
    assert parse_config(["--training-dataset", "d", "--local-output-dir", "o"]).lr == 1e-5
    assert parse_config(["--training-dataset", "d", "--local-output-dir", "o", "--lora"]).lr == 2e-4


def test_saved_config_shows_the_learning_rate_actually_used(tmp_path):
    """--lr left out: train_config.json records the rate chosen from --lora, not null."""
    for flags, rate in (([], 1e-5), (["--lora"], 2e-4), (["--lora", "--lr", "5e-5"], 5e-5)):
        config = parse_config(["--training-dataset", "d", "--local-output-dir", str(tmp_path), *flags])
        config.save(tmp_path / "train_config.json")
        saved = json.loads((tmp_path / "train_config.json").read_text())
        assert saved["lr"] == rate and saved["lora"] == ("--lora" in flags)
        lines = (line.split(" = ", 1) for line in config.describe().splitlines())
        printed = {key.strip(): value for key, value in lines}
        assert printed["lr"] == str(rate)  # the config printed at start says the same


@pytest.mark.parametrize("flags, message", [
    (["--test-size", "2.5"], "--test-size"),
    (["--per-device-train-batch-size", "0"], "--per-device-train-batch-size"),
    (["--epochs", "0"], "nothing to train"),
    (["--deepspeed", "nope.json"], "DeepSpeed config not found"),
])
def test_bad_flag_values_are_refused(flags, message):
    with pytest.raises(TrainingError, match=message):
        parse_config(["--training-dataset", "d", "--local-output-dir", "o", *flags])


def test_config_is_saved_as_json(tmp_path):
    config = parse_config(["--training-dataset", "d", "--local-output-dir", str(tmp_path)])
    config.save(tmp_path / "c.json")
    assert json.loads((tmp_path / "c.json").read_text()) == config.to_dict()
    assert "input_model" in config.describe() and "smollm2-135m-instruct" in config.describe()


def test_parser_has_no_flag_without_help():
    for action in build_parser()._actions:
        assert action.help, action.dest


# ---------------------------------------------------------------- reading and validation

def test_reads_chat_and_dolly_records():
    chat = read_records(CHAT)
    assert len(chat) == 24 and chat[0].line == 1
    assert [m["role"] for m in chat[0].messages] == ["user", "assistant"]
    dolly = read_records(DOLLY)
    assert dolly[0].category == "closed_qa"
    assert dolly[0].messages[0]["content"].startswith("When should I water tomatoes?\n\nContext:\nTomatoes")
    assert dolly[1].messages[0]["content"] == "How do I keep slugs off hostas?"  # empty context: no header
    assert dolly[1].messages[1] == {"role": "assistant", "content": dolly[1].messages[1]["content"]}


@pytest.mark.parametrize("bad_line, message, hint", [
    ("{not json", "not valid JSON", "one JSON object per line"),
    ("[1, 2]", "expected a JSON object", None),
    (chat_line(("user", "hi"), (" assistant", "hello")), "role ' assistant'", "did you mean 'assistant'?"),
    (chat_line(("user", "hi")), "no non-empty assistant turn", "at least one assistant message"),
    (chat_line(("user", "hi"), ("assistant", "  ")), "no non-empty assistant turn", None),
    (json.dumps({"messages": []}), "non-empty list", None),
    (json.dumps({"messages": [{"role": "user"}]}), '"role" and "content"', None),
    (json.dumps({"instruction": "q", "context": "", "response": ""}), 'non-empty string "response"', None),
    (json.dumps({"prompt": "q", "completion": "a"}), "unknown record shape", "Dolly"),
])
def test_bad_line_is_reported_with_its_number(tmp_path, bad_line, message, hint):
    path = write(tmp_path / "d.jsonl", chat_line(("user", "a"), ("assistant", "b")), "", bad_line)
    with pytest.raises(DatasetError) as info:
        read_records(path)
    err = info.value
    assert err.line == 3 and err.path == str(path)
    assert message in err.message
    if hint:
        assert hint in err.hint
    assert str(err).startswith(f"{path}:3: ")


def test_empty_and_missing_files_are_refused(tmp_path):
    with pytest.raises(DatasetError, match="empty"):
        read_records(write(tmp_path / "e.jsonl", "", "  "))
    with pytest.raises(DatasetError, match="not found"):
        read_records(tmp_path / "missing.jsonl")


@pytest.mark.parametrize("case", ["bad-line", "empty", "missing-model"])
def test_cli_user_errors_exit_2_without_traceback(tmp_path, tiny_model, case):
    data, model = CHAT, str(tiny_model)
    if case == "bad-line":
        data = write(tmp_path / "d.jsonl", chat_line(("user", "a"), ("assistant", "b")), "{oops")
    elif case == "empty":
        data = write(tmp_path / "d.jsonl", "")
    else:
        model = str(tmp_path / "no-such-model")
    result = run_cli("--training-dataset", str(data), "--local-output-dir", str(tmp_path / "out"),
                     "--input-model", model, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")
    expected = {"bad-line": f"{data}:2: not valid JSON", "empty": "empty",
                "missing-model": "no-such-model"}[case]
    assert expected in result.stderr
    assert "hint:" in result.stderr


# ---------------------------------------------------------------- chat template and the loss mask

def test_loss_mask_covers_exactly_the_assistant_turns(tokenizer):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is a routing number?"},
                {"role": "assistant", "content": "The bank's nine digit id."},
                {"role": "user", "content": "Where is mine?"},
                {"role": "assistant", "content": "Under Accounts > Details."}]
    ids, labels = tokenize_conversation(tokenizer, messages)
    assert len(ids) == len(labels)
    assert all(label in (IGNORE, token) for token, label in zip(ids, labels, strict=True))
    trained = tokenizer.decode([t for t, lab in zip(ids, labels, strict=True) if lab != IGNORE])
    assert trained == "The bank's nine digit id.<|im_end|>\nUnder Accounts > Details.<|im_end|>\n"
    prompt_only = tokenizer.decode([t for t, lab in zip(ids, labels, strict=True) if lab == IGNORE])
    for text in ("Be brief.", "What is a routing number?", "Where is mine?", "<|im_start|>assistant\n"):
        assert text in prompt_only
    assert "Details" not in prompt_only
    # The pieces joined give the whole rendered conversation, nothing lost or duplicated.
    assert tokenizer.decode(ids) == tokenizer.apply_chat_template(messages, tokenize=False)


def test_template_without_chat_template_is_refused(tokenizer):
    import copy

    plain = copy.deepcopy(tokenizer)
    plain.chat_template = None
    with pytest.raises(DatasetError, match="no chat template"):
        tokenize_conversation(plain, [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])


def test_overlong_records_are_truncated_or_dropped_and_counted(tokenizer):
    long_answer = "word " * 200
    records = [Record(1, [{"role": "user", "content": "short?"}, {"role": "assistant", "content": "yes"}]),
               Record(2, [{"role": "user", "content": "long?"}, {"role": "assistant", "content": long_answer}]),
               Record(3, [{"role": "user", "content": "x " * 300}, {"role": "assistant", "content": "prompt too long"}])]
    kept, stats = build_examples(records, tokenizer, max_seq_len=64, overlong="truncate")
    assert [e.line for e in kept] == [1, 2]
    assert (stats.records, stats.truncated, stats.dropped, stats.dropped_lines) == (2, 2, 1, [3])
    assert len(kept[1].input_ids) == 64 and kept[1].trained_tokens > 0
    kept, stats = build_examples(records, tokenizer, max_seq_len=64, overlong="drop")
    assert [e.line for e in kept] == [1]
    assert (stats.truncated, stats.dropped, stats.dropped_lines) == (0, 2, [2, 3])
    assert stats.tokens == len(kept[0].input_ids) and stats.trained_tokens == kept[0].trained_tokens


def test_split_is_seeded_and_keeps_both_sides():
    records = read_records(CHAT)
    train, held = split_records(records, 0.25, seed=1)
    assert (len(train), len(held)) == (18, 6)
    assert {r.line for r in train}.isdisjoint(r.line for r in held)
    assert [r.line for r in held] == [r.line for r in split_records(records, 0.25, seed=1)[1]]
    assert [r.line for r in held] != [r.line for r in split_records(records, 0.25, seed=2)[1]]
    assert len(split_records(records, 3, seed=1)[1]) == 3
    assert len(split_records(records, 0.001, seed=1)[1]) == 1  # a fraction never rounds the eval set away
    assert split_records(records, 0, seed=1)[1] == []
    assert len(split_records(records[:1], 0.5, seed=1)[1]) == 0


def test_collator_pads_and_masks():
    from training.data import PadCollator

    batch = PadCollator(pad_token_id=0)([{"input_ids": [5, 6, 7], "labels": [IGNORE, 6, 7]},
                                         {"input_ids": [8], "labels": [8]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE, 6, 7], [8, IGNORE, IGNORE]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


# ---------------------------------------------------------------- report and warnings

def test_overfit_warning_needs_eval_up_and_train_down():
    from training.callbacks import overfit_warning

    assert overfit_warning((10, 2.0, 2.5), (20, 2.2, 1.5)) is not None
    assert "rose 2 → 2.2" in overfit_warning((10, 2.0, 2.5), (20, 2.2, 1.5))
    assert overfit_warning((10, 2.0, 2.5), (20, 1.9, 1.5)) is None  # both falling: fine
    assert overfit_warning((10, 2.0, 2.5), (20, 2.2, 2.6)) is None  # both rising: not memorising
    assert overfit_warning((10, 2.0, None), (20, 2.2, 1.5)) is None


def test_overfit_watch_follows_the_trainer_events():
    from types import SimpleNamespace

    from training.callbacks import OverfitWatch

    watch = OverfitWatch()
    for step, train_loss, eval_loss in [(10, 2.5, 2.0), (20, 1.5, 1.8), (30, 0.9, 2.1)]:
        state = SimpleNamespace(global_step=step, is_world_process_zero=True)
        watch.on_log(None, state, None, logs={"loss": train_loss})
        watch.on_evaluate(None, state, None, metrics={"eval_loss": eval_loss})
    assert len(watch.warnings) == 1 and "steps 20 → 30" in watch.warnings[0]
    assert "checkpoint at step 20" in watch.warnings[0]


def test_report_warns_on_tiny_data_and_missing_eval():
    from training.data import TokenStats
    from training.report import Plan, data_warnings, format_report

    plan = Plan(train=TokenStats(records=10, tokens=1000, trained_tokens=400), eval=TokenStats(), epochs=3,
                optimizer_steps=30, sequences_per_step=1, trainable_params=1_000_000, total_params=2_000_000,
                tokens_per_s=100.0)
    assert plan.planned_tokens == 3000 and plan.planned_trained_tokens == 1200
    plan.warnings = data_warnings(plan)
    assert len(plan.warnings) == 2
    text = format_report(plan)
    assert "tokens × epochs   3,000 (1,200 trained)" in text
    assert "1,000,000 trainable of 2,000,000 (50.00%)" in text
    assert "estimated time    30 s at 100 tokens/s" in text
    assert "overfitting risk" in text and "no evaluation split" in text
    big = dataclasses.replace(plan, trainable_params=100, eval=TokenStats(records=2))
    assert data_warnings(big) == []


# ---------------------------------------------------------------- end to end on the tiny model

def train_tiny(tiny_model, out: Path, *flags: str) -> dict:
    from training.trainer import train

    config = parse_config(["--input-model", str(tiny_model), "--training-dataset", str(CHAT),
                           "--local-output-dir", str(out), "--test-size", "4", "--logging-steps", "1",
                           "--estimate-steps", "1", "--num-sample-prompts", "2", "--sample-max-new-tokens", "4",
                           *flags])
    return train(config)


def test_full_fine_tune_end_to_end(tmp_path, tiny_model):
    out = tmp_path / "run"
    summary = train_tiny(tiny_model, out, "--max-steps", "10", "--lr", "1e-2", "--eval-steps", "5",
                         "--save-steps", "3", "--save-total-limit", "2")
    losses = summary["losses"]
    assert losses["final_train_loss"] < 0.9 * losses["first_train_loss"]  # it really learns
    assert [step for step, _ in losses["eval"]] == [5, 10] and losses["final_eval_loss"] is not None
    assert summary["data"]["train"]["records"] == 20 and summary["data"]["eval"]["records"] == 4
    assert summary["parameters"]["trainable"] == summary["parameters"]["total"] > 0
    assert summary["tokens_seen"] > 0 and summary["tokens_per_s"] > 0 and summary["estimate"]["tokens_per_s"] > 0
    assert any("overfitting risk" in w for w in summary["warnings"])
    assert json.loads((out / "training_summary.json").read_text())["global_step"] == 10
    assert json.loads((out / "train_config.json").read_text())["lr"] == 1e-2
    # save-total-limit: only the two newest of checkpoints 3, 6, 9, 10 remain
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-9"]
    log = (out / "train.log").read_text()
    assert "pre-training report" in log and "sample 2 @ step 10" in log and "generated:" in log
    assert len(summary["samples"]) == 4
    assert list((out / "runs").glob("events.out.tfevents.*"))
    assert not list((out / "checkpoints").glob("runs"))  # TensorBoard logs all in one place
    assert_servable(out)


def assert_servable(model_dir: Path) -> None:
    """The output dir is a complete HF model: weights, tokenizer and chat template, and it generates."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    assert tok.chat_template
    ids = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=3, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]


def test_lora_is_merged_and_the_adapter_kept(tmp_path, tiny_model):
    from safetensors.torch import load_file

    out = tmp_path / "lora"
    summary = train_tiny(tiny_model, out, "--lora", "--lora-r", "4", "--max-steps", "4", "--lr", "5e-2",
                         "--eval-steps", "4", "--save-steps", "4")
    trainable, total = summary["parameters"]["trainable"], summary["parameters"]["total"]
    assert 0 < trainable < total / 5
    assert summary["outputs"] == {"adapter_dir": str(out / "adapter"), "model_dir": str(out)}
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert not (out / "adapter_config.json").exists()  # the root is a plain merged model
    merged = load_file(out / "model.safetensors")
    base = load_file(tiny_model / "model.safetensors")
    key = "model.layers.0.self_attn.q_proj.weight"
    assert set(merged) == set(base)
    assert not merged[key].equal(base[key])  # the trained adapter was folded in
    assert merged["model.layers.0.mlp.up_proj.weight"].equal(base["model.layers.0.mlp.up_proj.weight"])
    assert_servable(out)


def test_unknown_lora_target_names_the_real_layers(tmp_path, tiny_model):
    with pytest.raises(TrainingError) as info:
        train_tiny(tiny_model, tmp_path / "x", "--lora", "--lora-targets", "c_attn", "--max-steps", "1",
                   "--estimate-steps", "0")
    assert "q_proj" in info.value.hint


def test_existing_checkpoints_need_resume(tmp_path, tiny_model):
    out = tmp_path / "run"
    (out / "checkpoints" / "checkpoint-2").mkdir(parents=True)  # even an incomplete one counts
    with pytest.raises(TrainingError, match="pass --resume"):
        train_tiny(tiny_model, out, "--max-steps", "2")


def test_resume_after_kill(tmp_path, tiny_model):
    """SIGKILL a run once it has a checkpoint; --resume continues from it instead of starting over."""
    out = tmp_path / "run"
    flags = ["--input-model", str(tiny_model), "--training-dataset", str(CHAT), "--local-output-dir", str(out),
             "--test-size", "0", "--logging-steps", "1", "--save-steps", "2", "--save-total-limit", "3",
             "--estimate-steps", "0", "--per-device-train-batch-size", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "training.trainer", *flags, "--max-steps", "100000"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.time() + 120
        while not list((out / "checkpoints").glob("checkpoint-*/trainer_state.json")) and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)  # let the checkpoint it is writing now finish (the last one may be partial)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    complete = [int(p.name.split("-")[1]) for p in (out / "checkpoints").glob("checkpoint-*") if readable_state(p)]
    assert complete, "no checkpoint was written before the kill"
    resumed_from = max(complete)
    # what a kill in the middle of a save leaves behind: a newer checkpoint without its trainer_state.json
    half_written = out / "checkpoints" / f"checkpoint-{resumed_from + 1}"
    half_written.mkdir(exist_ok=True)
    (half_written / "model.safetensors").write_bytes(b"\0" * 10)
    (half_written / "trainer_state.json").unlink(missing_ok=True)
    result = run_cli(*flags, "--max-steps", str(resumed_from + 2), "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["global_step"] == resumed_from + 2
    steps_logged = [step for step, _ in summary["losses"]["train"]]
    assert steps_logged[0] == 1 and steps_logged[-1] == resumed_from + 2  # earlier history restored
    assert summary["resumed_from"] == str(out / "checkpoints" / f"checkpoint-{resumed_from}")
    assert f"--resume: continuing from {out / 'checkpoints' / f'checkpoint-{resumed_from}'}" in result.stdout
    assert f"removing incomplete checkpoint-{resumed_from + 1}" in result.stdout
    assert 0 < summary["tokens_seen"] < summary["tokens_seen_total"]  # this session trained only the last steps


def readable_state(checkpoint: Path) -> bool:
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
        return True
    except (OSError, ValueError):
        return False


def test_deepspeed_configs_resolve_every_auto_value():
    from types import SimpleNamespace

    from transformers import LlamaConfig
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    from training.trainer import training_arguments

    configs = sorted((ROOT / "training" / "configs").glob("*.json"))
    assert [c.name for c in configs] == ["zero2.json", "zero2_offload.json", "zero3.json"]
    try:
        for path in configs:
            config = parse_config(["--training-dataset", "d", "--local-output-dir", "o", "--deepspeed", str(path),
                                   "--lr", "3e-4", "--per-device-train-batch-size", "3",
                                   "--gradient-accumulation-steps", "2", "--warmup-steps", "5", "--bf16"])
            args = training_arguments(config, has_eval=True)
            ds = args.hf_deepspeed_config
            ds.trainer_config_finalize(args, SimpleNamespace(config=LlamaConfig(hidden_size=64)), 100)
            resolved = json.dumps(ds.config)
            assert '"auto"' not in resolved, path.name
            assert ds.config["train_micro_batch_size_per_gpu"] == 3
            assert ds.config["gradient_accumulation_steps"] == 2
            offload = "offload" in path.name
            # ZeRO-2/3 use the Trainer's own AdamW and schedule (no DeepSpeed op to compile); offload needs
            # DeepSpeed's CPU Adam, whose hyper-parameters come from our flags.
            assert "scheduler" not in ds.config and ("optimizer" in ds.config) == offload
            if offload:
                assert ds.config["optimizer"]["params"]["lr"] == 3e-4
            assert ds.config["bf16"]["enabled"] is True
            stage = ds.config["zero_optimization"]["stage"]
            assert stage == (3 if "zero3" in path.name else 2)
            assert ("offload_optimizer" in ds.config["zero_optimization"]) == offload
    finally:
        unset_hf_deepspeed_config()  # the config registers itself globally; later tests must not see it


# DeepSpeed on CPU, one process: the CPU accelerator would JIT-compile its shared-memory comm op
# (minutes on a fresh machine); a single rank does not need it, so the run stubs it out.
DEEPSPEED_RUN = ("import importlib, runpy, sys; "
                 "importlib.import_module('deepspeed.comm.torch').build_shm_op = lambda: None; "
                 "sys.argv = ['training.trainer', *sys.argv[1:]]; runpy.run_module('training.trainer', "
                 "run_name='__main__')")


@pytest.mark.parametrize("ds_config, lora", [("zero2.json", False), ("zero3.json", True)])
def test_deepspeed_single_process_cpu(tmp_path, tiny_model, ds_config, lora):
    from safetensors.torch import load_file

    out = tmp_path / "ds"
    extensions = tmp_path / "torch_extensions"  # must stay empty: nothing is compiled
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TORCH_EXTENSIONS_DIR": str(extensions), "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(29600 + os.getpid() % 300 + (7 if lora else 0))}
    flags = ["--input-model", str(tiny_model), "--training-dataset", str(CHAT), "--local-output-dir", str(out),
             "--deepspeed", str(ROOT / "training" / "configs" / ds_config), "--max-steps", "4", "--lr", "5e-2",
             "--eval-steps", "2", "--save-steps", "2", "--logging-steps", "1", "--test-size", "4",
             "--num-sample-prompts", "1", "--sample-max-new-tokens", "4", "--local_rank=0"]
    result = subprocess.run([sys.executable, "-c", DEEPSPEED_RUN, *flags, *(["--lora"] if lora else [])],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["global_step"] == 4 and summary["losses"]["final_eval_loss"] is not None
    if not lora:  # 4 LoRA steps on a random model move the loss too little to compare; weights are checked below
        assert summary["losses"]["final_train_loss"] < summary["losses"]["first_train_loss"]
    assert "sample 1 @ step 4" in (out / "train.log").read_text()  # generation works on sharded weights
    key = "model.layers.0.self_attn.q_proj.weight"
    trained, base = load_file(out / "model.safetensors"), load_file(tiny_model / "model.safetensors")
    assert trained[key].shape == base[key].shape and not trained[key].equal(base[key])
    assert (out / "adapter" / "adapter_config.json").is_file() == lora
    assert not extensions.exists() or not any(extensions.iterdir())
    assert_servable(out)


def test_torchrun_two_processes_data_parallel_on_cpu(tmp_path, tiny_model):
    """torchrun --nproc_per_node 2: DDP over gloo, both ranks train, rank 0 alone logs and saves one model."""
    from safetensors.torch import load_file

    out = tmp_path / "ddp"
    flags = ["--input-model", str(tiny_model), "--training-dataset", str(CHAT), "--local-output-dir", str(out),
             "--max-steps", "4", "--lr", "5e-2", "--eval-steps", "2", "--save-steps", "2", "--logging-steps", "1",
             "--test-size", "4", "--num-sample-prompts", "1", "--sample-max-new-tokens", "4",
             "--per-device-train-batch-size", "2", "--gradient-accumulation-steps", "1"]
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "training.trainer", *flags], cwd=ROOT, capture_output=True, text=True,
                            timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert summary["global_step"] == 4 and summary["losses"]["final_eval_loss"] is not None
    assert summary["losses"]["final_train_loss"] < summary["losses"]["first_train_loss"]
    log = (out / "train.log").read_text()
    assert "data-parallel over 2 processes (gloo): each optimizer step sees 4 sequences" in log
    assert log.count("pre-training report") == 1 and log.count("step 4/4  loss") == 1  # rank 1 logs nothing
    key = "model.layers.0.self_attn.q_proj.weight"
    trained, base = load_file(out / "model.safetensors"), load_file(tiny_model / "model.safetensors")
    assert not trained[key].equal(base[key])
    assert sorted(p.name for p in out.glob("*.safetensors")) == ["model.safetensors"]
    assert_servable(out)
