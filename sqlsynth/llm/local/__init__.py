"""The in-process ``provider: transformers`` backend: batched generation with a local HF model.

How it works (see the README section "The local model" for the user-facing version):

- The model (bundled name, GGUF file, HF dir or PEFT adapter dir; see ``bundled.resolve_model_dir``)
  is loaded once per process and device, and shared by every endpoint naming it.
- Requests are grouped by generation settings, sorted by prompt length (less padding), cut into
  batches sized by memory (and ``batch_size``), left-padded and run through one ``generate()``.
- Sampling is done by our own logits processor with one ``torch.Generator`` per row, so a request
  with a ``seed`` gives the same answer alone or inside any batch (up to float rounding between
  batch shapes); ``generate`` itself runs greedy and just takes the token we picked.
- ``response_schema`` → xgrammar JSON-schema grammar as a logits processor (compact JSON, bounded
  strings/arrays) plus a closing phase near ``max_tokens`` that only lets the model close what it
  opened, so every structured answer is complete, schema-valid JSON.
- ``num_return_sequences`` = n > 1: ``LLMResult.text`` is a JSON array of the n answers (strings;
  for structured output the parsed objects), token counts are summed over the n sequences.

torch / transformers / xgrammar are imported inside functions only: importing this package is cheap.

Modules: ``options`` (modelParameters), ``loading`` (model, tokenizer, device), ``batching`` (jobs and
batch sizes), ``generation`` (one batch through generate()), ``sampling`` (logits processors),
``grammar`` (structured output), ``backend`` (the endpoint-facing class).
"""

from .backend import TransformersBackend
from .grammar import DEFAULT_MAX_ITEMS, bounded_schema, minimal_instance, pack_bitmask
from .loading import LoadedModel, best_device, encode_chat, import_torch, load_model, model_revision
from .options import DEFAULT_MAX_NEW_TOKENS, GenerationOptions, InvalidParametersError, parse_options

__all__ = ["DEFAULT_MAX_ITEMS", "DEFAULT_MAX_NEW_TOKENS", "GenerationOptions", "InvalidParametersError",
           "LoadedModel", "TransformersBackend", "best_device", "bounded_schema", "encode_chat",
           "import_torch", "load_model", "minimal_instance", "model_revision", "pack_bitmask",
           "parse_options"]
