"""Retrieval quality on real data nobody here wrote: banking77 (PolyAI, CC BY 4.0), read at run time.

    python bench/corpus_retrieval.py [--data ../shared/data/banking77] [--limit-test N]

A throw-away sqlsynth project (in a temp dir) indexes the train questions with the vector_index
materialization (search: the question, return: its category) and queries it with the test questions
through retrieve() in SQL. Reported, for the bundled all-MiniLM-L6-v2:
  top-1 agreement   the nearest train question has the test question's category
  top-5 any         the category is among the 5 nearest train questions' categories
  top-5 vote        the most frequent category of the 5 nearest (ties: the nearer one) is right
  chance            1 / number of categories
The data is never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"


def literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit-test", type=int, default=None, help="query only the first N test questions")
    parser.add_argument("--limit-train", type=int, default=None, help="index only the first N (smoke test)")
    args = parser.parse_args()
    train, test = args.data / "train.csv", args.data / "test.csv"
    if not train.is_file() or not test.is_file():
        raise SystemExit(f"banking77 not found in {args.data} (train.csv, test.csv): pass --data")
    categories = json.loads((args.data / "categories.json").read_text())

    from sqlsynth.api import Options, execute, show
    from sqlsynth.run_progress import Reporter

    work = Path(tempfile.mkdtemp(prefix="sqlsynth-banking77-"))
    (work / "models").mkdir()
    (work / "project.yml").write_text("name: banking77\n")
    (work / "models" / "train_index.sql").write_text(
        "{{ config(materialized='vector_index', collection='banking77', id_column='id', "
        "search_column='text', return_column='category') }}\n"
        f"select row_number() over () as id, text, category from read_csv({literal(train)}, header = true)"
        + (f" limit {int(args.limit_train)}" if args.limit_train else "") + "\n")
    limit = f"limit {int(args.limit_test)}" if args.limit_test else ""
    (work / "models" / "test_hits.sql").write_text(
        "-- depends_on: {{ ref('train_index') }}\n"
        "{{ config(materialized='table') }}\n"
        "select text, category, retrieve('banking77', text, 5) as hits\n"
        f"from (select * from read_csv({literal(test)}, header = true) {limit})\n")
    started = time.perf_counter()
    report = execute("run", Options(project_dir=work, select=["train_index"]), Reporter(quiet=True))
    index_s = time.perf_counter() - started
    if not report.success:
        raise SystemExit(report.results[0].message)
    started = time.perf_counter()
    report = execute("run", Options(project_dir=work, select=["test_hits"]), Reporter(quiet=True))
    query_s = time.perf_counter() - started
    if not report.success:
        raise SystemExit(report.results[0].message)
    sql = """
        with scored as (
            select category,
                   hits[1].text = category as top1,
                   list_contains(list_transform(hits, lambda h: h.text), category) as top5_any,
                   (select h.text from unnest(hits) with ordinality as u(h, n)
                    group by h.text order by count(*) desc, min(n) limit 1) = category as top5_vote
            from test_hits)
        select count(*), avg(top1::int), avg(top5_any::int), avg(top5_vote::int) from scored
    """
    (n, top1, top5_any, top5_vote), = show(Options(project_dir=work), sql, 1)[1]
    train_rows = args.limit_train or sum(1 for _ in train.open()) - 1
    print(f"banking77: {train_rows:,} train questions indexed in {index_s:.1f}s "
          f"({train_rows / index_s:.0f} docs/s, whole run), {n:,} test questions retrieved in {query_s:.1f}s "
          f"({n / query_s:.0f} queries/s)")
    print(f"{'metric (all-MiniLM-L6-v2, cosine)':<36} {'value':>7}  {'vs chance':>9}")
    chance = 1 / len(categories)
    for label, value in (("top-1 category agreement", top1), ("top-5 contains category", top5_any),
                         ("top-5 majority vote", top5_vote)):
        print(f"{label:<36} {value:>7.3f}  {value / chance:>8.0f}x")
    print(f"{'chance (1/' + str(len(categories)) + ')':<36} {chance:>7.3f}")
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
