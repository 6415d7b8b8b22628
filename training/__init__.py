"""Fine-tune a student model on sqlsynth's exported JSONL: ``python -m training.trainer --help``.

Modules, one concern each: ``config`` (the dataclass of flags), ``data`` (JSONL → masked token
records), ``model`` (resolve/load/LoRA/save), ``report`` (pre-training report and warnings),
``callbacks`` (logging, sample generations, overfitting watch), ``trainer`` (the entry point).
"""
