"""The private-corpus path as a sqlsynth plugin (see sqlsynth.extensions): the corpus SQL
functions, the ``vector_index`` materialization and the Stack Exchange ``.xml`` seed reader.

The hook functions import their modules on first call, so loading the registry stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def provide_corpus_functions(connection: Any, context: Any) -> None:
    from .sql_functions import register_corpus_functions

    register_corpus_functions(connection, context)


def corpus_function_specs(context: Any) -> list[Any]:
    from .sql_functions import corpus_function_specs as specs

    return specs(context)


def build_vector_index(ctx: Any) -> Any:
    from .vector_index import build_vector_index as build

    return build(ctx)


def read_stack_exchange_xml(path: Path, display_path: str, config: dict) -> Any:
    from .readers import read_stack_exchange_xml as read

    return read(path, display_path, config)


def register(registry: Any) -> None:
    registry.function_providers.append(provide_corpus_functions)
    registry.python_functions.append(corpus_function_specs)
    registry.add_materialization("vector_index", build_vector_index)
    registry.add_seed_reader(".xml", read_stack_exchange_xml)
