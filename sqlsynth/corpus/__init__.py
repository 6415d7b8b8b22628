"""The private-corpus path (Workflow B): ingest documents, index them, retrieve grounded context.

- ``readers``: the seed reader ``sqlsynth.corpus.plugin`` registers (Stack Exchange ``*.xml``).
- ``functions``: built-in SQL functions for every connection (``html_to_text``, ``token_count``,
  ``chunk_text``, ``embed``, ``retrieve``, ``trim_context``, ``context_window``, ``read_documents``).
- ``vector_index``: the ``vector_index`` materialization (sentence-transformers + embedded Chroma).

Importing this package is cheap: torch, sentence-transformers and chromadb load on first use.
"""
