"""A tiny randomly initialised Llama with a ChatML tokenizer, built offline in about a second.

For smoke tests and benchmarks of the training loop without the real model (nothing is downloaded):
``python -m training.testing OUT_DIR [TEXT_FILE...]`` writes a model dir usable as --input-model.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def build_tokenizer(texts: Iterable[str], vocab_size: int = 512):
    """A byte-level BPE trained on ``texts``, with ChatML special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts) + ["user assistant system"], trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token="<|im_start|>")
    fast.chat_template = CHATML
    return fast


def build_tiny_model_dir(out: str | Path, texts: Iterable[str], hidden: int = 64, layers: int = 2) -> Path:
    """Save a random Llama (same architecture family as SmolLM2, toy sizes) plus tokenizer to ``out``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = build_tokenizer(texts)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=1024, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    out = Path(out)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _texts_from(paths: list[str]) -> list[str]:
    return [line for p in paths for line in Path(p).read_text(encoding="utf-8").splitlines()]


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m training.testing OUT_DIR [TEXT_FILE...]")
    print(build_tiny_model_dir(sys.argv[1], _texts_from(sys.argv[2:]) or ["hello world"]))
