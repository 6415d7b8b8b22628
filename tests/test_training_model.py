"""The real bundled SmolLM2-135M-Instruct, LoRA over-fitting 20 conversations on CPU (~1-2 min).

Marked ``model``: deselect with ``-m 'not model'``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import parse_config
from training.data import PadCollator, build_examples, read_records, split_records

pytestmark = pytest.mark.model

CHAT = Path(__file__).resolve().parent / "fixtures" / "training" / "chat.jsonl"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from training.trainer import train

    out = tmp_path_factory.mktemp("smollm2") / "student"
    config = parse_config([
        "--input-model", "smollm2-135m-instruct", "--training-dataset", str(CHAT), "--local-output-dir", str(out),
        "--test-size", "4", "--lora", "--lr", "2e-3", "--epochs", "5", "--per-device-train-batch-size", "4",
        "--logging-steps", "5", "--eval-steps", "25", "--save-steps", "25", "--estimate-steps", "1",
        "--num-sample-prompts", "1", "--sample-max-new-tokens", "16", "--seed", "42",
    ])
    return out, train(config)


def test_lora_overfits_twenty_conversations(trained):
    out, summary = trained
    assert summary["data"]["train"]["records"] == 20
    losses = summary["losses"]
    assert losses["final_train_loss"] <= 0.5 * losses["first_train_loss"], losses["train"]
    assert summary["parameters"]["trainable"] < 0.05 * summary["parameters"]["total"]
    assert summary["tokens_per_s"] > 0 and summary["outputs"]["model_dir"] == str(out)


def test_saved_merged_model_carries_the_training(trained):
    """Measured from disk, so a merge or save that drops the adapter fails here."""
    from training.model import resolve_model_dir

    out, _ = trained
    train_records, _ = split_records(read_records(CHAT), 4, seed=42)
    base = assistant_loss(resolve_model_dir("smollm2-135m-instruct"), train_records)
    tuned = assistant_loss(out, train_records)
    print(f"assistant-token loss on the training set: base {base:.3f}, fine-tuned {tuned:.3f}")
    assert tuned <= 0.6 * base, (base, tuned)


def assistant_loss(model_dir: Path, records) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    examples, _ = build_examples(records, tokenizer, 1024, "truncate")
    batch = PadCollator(tokenizer.pad_token_id)([{"input_ids": e.input_ids, "labels": e.labels} for e in examples])
    with torch.no_grad():
        return model(**batch).loss.item()  # mean over every assistant token of every record


def test_student_answers_through_ai_query(trained):
    import duckdb

    from sqlsynth.config import ProjectConfig
    from sqlsynth.llm.ai_query_udf import register_ai_query

    out, _ = trained
    config = ProjectConfig(name="student_check",
                           endpoints={"student": {"provider": "transformers", "model": str(out)}})
    questions = ["Should I buy Apple stock?", "Can I freeze my debit card?"]
    con = duckdb.connect()
    function = register_ai_query(con, config)
    try:
        rows = con.execute("SELECT q, ai_query('student', q, modelParameters := {'max_tokens': 32}) "
                           "FROM unnest(?) AS t(q) ORDER BY q", [questions]).fetchall()
    finally:
        function.close()
        con.close()
    answers = dict(rows)
    assert all(answers[q].strip() for q in questions)
    # the trained policy: decline investment advice, point to the app for account tasks
    assert "cannot" in answers["Should I buy Apple stock?"].lower()
    assert "app" in answers["Can I freeze my debit card?"].lower()
