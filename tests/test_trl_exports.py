"""The JSONL exports as TRL reads them (issue 16 item 12): SFTTrainer's own dataset preparation, the
bundled model's tokenizer (no download; a tiny random model stands in for the weights), CPU only.

The prompt/completion export trains on exactly the tokens training/ trains on (the assistant turn);
the messages export, as TRL reads it, trains on every token, and its assistant-only mode needs a
chat template with {% generation %} markers, which SmolLM2's lacks."""

import json
import shutil
from pathlib import Path

import pytest

from conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
EXPORTS = ROOT / "models/bank/exports"
CONVERSATIONS = [
    {"conversation_id": 1, "split": "train", "messages": [
        {"role": "user", "content": "How do I freeze my card?"},
        {"role": "assistant", "content": "Open the app, tap Cards, then Freeze."}]},
    {"conversation_id": 2, "split": "train", "messages": [
        {"role": "system", "content": "You are Northwind Bank's assistant."},
        {"role": "user", "content": "Should I buy Bitcoin?"},
        {"role": "assistant", "content": "I cannot give investment advice."}]},
    {"conversation_id": 3, "split": "eval", "messages": [
        {"role": "user", "content": "Held out"}, {"role": "assistant", "content": "Not exported to train."}]},
]


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> Path:
    """The project's real export models, built over a small chat_formatted."""
    project = tmp_path_factory.mktemp("exports")
    (project / "seeds").mkdir()
    (project / "models").mkdir()
    (project / "project.yml").write_text("name: exports_check\n")
    (project / "seeds/conversations.jsonl").write_text("\n".join(json.dumps(c) for c in CONVERSATIONS) + "\n")
    (project / "models/chat_formatted.sql").write_text("{{ config(materialized='table') }}\n"
                                                       "select * from {{ ref('conversations') }}\n")
    for name in ("chat_train.sql", "prompt_completion_train.sql", "prompt_completion_eval.sql"):
        shutil.copy(EXPORTS / name, project / "models" / name)
    (project / "macros").mkdir()
    shutil.copy(ROOT / "macros/prompt_completion.sql", project / "macros/prompt_completion.sql")
    result = run_cli("build", cwd=project)
    assert result.returncode == 0, result.stderr
    return project / "target/exports"


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from training.model import resolve_model_dir

    return AutoTokenizer.from_pretrained(resolve_model_dir("smollm2-135m-instruct"))


def _trl_trained_texts(path: Path, tokenizer, tmp_path: Path, **config) -> list[str]:
    """Each record's tokens that carry a label after SFTTrainer's preparation and collator."""
    import torch
    from datasets import load_dataset
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import SFTConfig, SFTTrainer

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1))
    dataset = load_dataset("json", data_files=str(path), split="train")
    args = SFTConfig(output_dir=str(tmp_path / "trl"), report_to="none", use_cpu=True, max_length=1024, **config)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    texts = []
    for example in trainer.train_dataset:
        batch = trainer.data_collator([example])
        ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
        texts.append(tokenizer.decode([t for t, label in zip(ids, labels, strict=True) if label != -100]))
    return texts


def _ours_trained_texts(tokenizer) -> list[str]:
    from training.data import IGNORE, tokenize_conversation

    texts = []
    for conversation in CONVERSATIONS[:2]:
        ids, labels = tokenize_conversation(tokenizer, conversation["messages"])
        texts.append(tokenizer.decode([t for t, label in zip(ids, labels, strict=True) if label != IGNORE]))
    return texts


def test_prompt_completion_export_has_the_conversational_shape(exports):
    records = [json.loads(line) for line in (exports / "prompt_completion_train.jsonl").read_text().splitlines()]
    assert records == [{"prompt": c["messages"][:-1], "completion": c["messages"][-1:]} for c in CONVERSATIONS[:2]]
    chat = [json.loads(line) for line in (exports / "chat_train.jsonl").read_text().splitlines()]
    assert [r["prompt"] + r["completion"] for r in records] == [c["messages"] for c in chat]
    assert len((exports / "prompt_completion_eval.jsonl").read_text().splitlines()) == 1


def test_trl_trains_the_prompt_completion_export_on_the_assistant_turn_only(exports, tokenizer, tmp_path):
    trl = _trl_trained_texts(exports / "prompt_completion_train.jsonl", tokenizer, tmp_path)
    assert trl == ["Open the app, tap Cards, then Freeze.<|im_end|>\n", "I cannot give investment advice.<|im_end|>\n"]
    assert trl == _ours_trained_texts(tokenizer)  # training/ on chat_train.jsonl: the same tokens


def test_trl_trains_the_messages_export_on_every_token(exports, tokenizer, tmp_path):
    trl = _trl_trained_texts(exports / "chat_train.jsonl", tokenizer, tmp_path)
    # no system turn in the record: SmolLM2's template inserts its own, and TRL trains on it too
    assert trl[0].startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert "How do I freeze my card?" in trl[0] and "Open the app, tap Cards, then Freeze." in trl[0]
    assert trl[1].startswith("<|im_start|>system\nYou are Northwind Bank's assistant.")
    with pytest.raises(ValueError, match="generation"):  # TRL: the template lacks {% generation %}
        _trl_trained_texts(exports / "chat_train.jsonl", tokenizer, tmp_path, assistant_only_loss=True)
