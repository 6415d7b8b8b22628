"""Embedding + index benchmark: 10k chunks through the vector_index materialization vs a plain script.

    python bench/corpus_index.py [--chunks 10000] [--words 70]

Both sides embed the same texts with the bundled all-MiniLM-L6-v2 (batch 64, normalised, CPU) and
write them to a fresh persistent Chroma collection (cosine), each in its own process, timed whole
(imports and model load included on both sides):
  sqlsynth  `sqlsynth run -s idx` on a project whose seed holds the chunks (seed loaded beforehand)
  plain     pyarrow → SentenceTransformer.encode → chromadb PersistentClient.add, nothing else
Then the incremental re-run (nothing changed: nothing is embedded). Target (issue 6): overhead ratio
sqlsynth / plain <= 1.2.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("tomato basil water soil compost prune rose aphid mulch seed bed pot leaf root sun shade frost "
         "garlic clay sand nitrogen bloom bud cane stem fruit harvest weed slug lawn hedge early late "
         "spring summer autumn winter deep shallow daily weekly acid lime feed cut grow plant").split()

PLAIN = r"""
import os, sys, time
os.environ["HF_HUB_OFFLINE"] = "1"; os.environ["ANONYMIZED_TELEMETRY"] = "False"
import pyarrow.parquet as pq
import chromadb
from chromadb.config import Settings
from sentence_transformers import SentenceTransformer
table = pq.read_table(sys.argv[1])
ids, texts = table.column("id").to_pylist(), table.column("text").to_pylist()
model = SentenceTransformer(sys.argv[3], device="cpu")
vectors = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
client = chromadb.PersistentClient(path=sys.argv[2], settings=Settings(anonymized_telemetry=False))
collection = client.create_collection("plain", embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
for start in range(0, len(ids), 2048):
    collection.add(ids=ids[start:start + 2048], embeddings=vectors[start:start + 2048],
                   documents=texts[start:start + 2048])
print(collection.count())
"""


def chunks(n: int, words: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        sentences = []
        while sum(len(s.split()) for s in sentences) < words:
            sentences.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))).capitalize() + ".")
        texts.append(" ".join(sentences))
    return [f"c{i}" for i in range(n)], texts


def timed(argv: list[str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds, stdout) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status:
        raise SystemExit(f"{argv} failed:\n{err.decode()}\n{out.decode()}")
    return wall, usage.ru_utime + usage.ru_stime, out.decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--words", type=int, default=70, help="words per chunk (~100 MiniLM tokens)")
    args = parser.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq

    from sqlsynth.corpus.models import embedding_model_dir, load_tokenizer

    work = Path(tempfile.mkdtemp(prefix="sqlsynth-index-"))
    project = work / "proj"
    (project / "seeds").mkdir(parents=True)
    (project / "models").mkdir()
    (project / "project.yml").write_text("name: bench_index\n")
    ids, texts = chunks(args.chunks, args.words)
    data = project / "seeds" / "chunks.parquet"
    pq.write_table(pa.table({"id": ids, "text": texts}), data)
    (project / "models" / "idx.sql").write_text(
        "{{ config(materialized='vector_index', collection='bench', id_column='id', search_column='text') }}\n"
        "select id, text from {{ ref('chunks') }}\n")
    tokens = sum(len(t) for t in load_tokenizer("all-minilm-l6-v2")(texts[:500], add_special_tokens=False)["input_ids"])
    print(f"{args.chunks:,} chunks, ~{tokens / 500:.0f} MiniLM tokens each, in {work}")

    python = sys.executable
    cli = [python, "-m", "sqlsynth", "--project-dir", str(project)]
    timed(cli + ["seed"])
    results = {
        "plain": timed([python, "-c", PLAIN, str(data), str(work / "plain_chroma"), str(embedding_model_dir(None))]),
        "sqlsynth": timed(cli + ["run", "-s", "idx"]),
    }
    results["rerun"] = timed(cli + ["run", "-s", "idx"])
    print()
    print(f"{'what':<52} {'wall s':>7} {'docs/s':>7} {'CPU s':>7}")
    labels = {"plain": "plain sentence-transformers + chromadb script",
              "sqlsynth": "sqlsynth run (vector_index materialization)",
              "rerun": "sqlsynth run again, nothing changed (0 embedded)"}
    for key, (wall, cpu, _) in results.items():
        rate = f"{args.chunks / wall:>7.0f}" if key != "rerun" else f"{'—':>7}"
        print(f"{labels[key]:<52} {wall:>7.1f} {rate} {cpu:>7.1f}")
    plain, ours = results["plain"], results["sqlsynth"]
    print()
    print(f"overhead ratio sqlsynth / plain: {ours[0] / plain[0]:.2f}x wall, {ours[1] / plain[1]:.2f}x CPU "
          f"(target <= 1.2)")
    import shutil

    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
