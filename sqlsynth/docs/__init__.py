"""`sqlsynth docs generate|serve`: a static, self-contained site about the project (dbt's docs).

catalog.py gathers what the project and its database know about each node, datasets.py measures the
exported fine-tuning files, layout.py places the lineage graph, site.py writes target/docs/index.html
(data, CSS and JS inlined: it opens from disk with no network) and serve.py serves that folder.
"""
