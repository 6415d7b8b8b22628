"""Ingest benchmark: a generated Stack Exchange Posts.xml (default 200 MB) read by the `.xml` seed reader.

    python bench/corpus_ingest.py [--mb 200] [--keep]

Each measurement runs in its own process (peak RSS is that process's ru_maxrss):
  reader   sqlsynth.corpus.readers streaming the file into arrow batches (no database)
  seed     `sqlsynth seed` on a project holding the file: parse + typed columns + DuckDB table, whole CLI
  baseline xml.etree.ElementTree.iterparse with elem.clear(), rows collected per 8k batch (the usual
           streaming recipe), no typing — the reference the ratio is printed against
Targets (issue 6): >= 50 MB/s and peak RSS <= 300 MB.
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
from xml.sax.saxutils import quoteattr

WORDS = ("tomato basil water soil compost prune rose aphid mulch seed bed pot leaf root sun shade frost "
         "garlic clay sand ph nitrogen bloom bud cane stem fruit harvest weed slug lawn hedge").split()


def paragraph(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def body(rng: random.Random) -> str:
    parts = [f"<p>{paragraph(rng, rng.randint(20, 70))} &amp; more</p>"]
    if rng.random() < 0.3:
        parts.append("<ul>" + "".join(f"<li>{paragraph(rng, 6)}</li>" for _ in range(3)) + "</ul>")
    if rng.random() < 0.2:
        parts.append("<pre><code>for x in range(3):\n    if x &lt; 2: print(x)\n</code></pre>")
    if rng.random() < 0.2:
        parts.append('<p>See <a href="https://example.org/guide">the guide</a>.</p>')
    return "".join(parts)


def generate(path: Path, megabytes: int, seed: int = 0) -> int:
    rng = random.Random(seed)
    target = megabytes * 1_000_000
    rows = 0
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="utf-8"?>\n<posts>\n')
        size = 0
        question = 1
        while size < target:
            rows += 1
            is_question = rng.random() < 0.35
            if is_question:
                question = rows
            attrs = {"Id": rows, "PostTypeId": 1 if is_question else 2,
                     "CreationDate": f"2012-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:11:12.345",
                     "Score": rng.randint(-2, 40), "Body": body(rng), "OwnerUserId": rng.randint(1, 9999),
                     "LastActivityDate": "2020-01-02T03:04:05.678", "CommentCount": rng.randint(0, 5),
                     "ContentLicense": "CC BY-SA 3.0"}
            if is_question:
                attrs.update(Title=paragraph(rng, 8), Tags="<tomatoes><watering>", AnswerCount=rng.randint(0, 4),
                             ViewCount=rng.randint(10, 9999))
            else:
                attrs["ParentId"] = question
            line = "  <row " + " ".join(f"{k}={quoteattr(str(v), {chr(10): '&#xA;'})}" for k, v in attrs.items()) + " />\n"
            out.write(line)
            size += len(line)
        out.write("</posts>\n")
    return rows


READER = """
import sys
from pathlib import Path
from sqlsynth.corpus.readers import read_stack_exchange_xml
rows = sum(b.num_rows for b in read_stack_exchange_xml(Path(sys.argv[1]), "Posts.xml", {}))
print(rows)
"""

BASELINE = """
import sys
import xml.etree.ElementTree as ET
rows, batch = 0, []
for event, elem in ET.iterparse(sys.argv[1], events=("end",)):
    if elem.tag == "row":
        batch.append(dict(elem.attrib))
        elem.clear()
        if len(batch) >= 8192:
            rows += len(batch); batch = []
rows += len(batch)
print(rows)
"""


def measure_rss(argv: list[str], cwd: Path | None = None) -> tuple[float, int, float]:
    """(wall seconds, peak RSS bytes, CPU seconds) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status:
        raise SystemExit(f"{argv} failed:\n{err.decode()}")
    return wall, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the generated file and project")
    parser.add_argument("--memory-limit", default="64MB",
                        help="project.yml memory_limit for DuckDB ('' for DuckDB's default)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sqlsynth-ingest-"))
    project = work / "proj"
    (project / "seeds").mkdir(parents=True)
    limit = f"memory_limit: {args.memory_limit}\n" if args.memory_limit else ""
    (project / "project.yml").write_text(f"name: ingest\n{limit}")
    print(f"project.yml memory_limit: {args.memory_limit or 'DuckDB default'}")
    xml = project / "seeds" / "Posts.xml"
    started = time.perf_counter()
    rows = generate(xml, args.mb)
    size = xml.stat().st_size
    print(f"generated {size / 1e6:,.0f} MB, {rows:,} rows in {time.perf_counter() - started:.1f}s → {xml}")

    python = sys.executable
    results = {}
    results["reader"] = measure_rss([python, "-c", READER, str(xml)])
    results["seed"] = measure_rss([python, "-m", "sqlsynth", "--project-dir", str(project), "seed"])
    results["baseline"] = measure_rss([python, "-c", BASELINE, str(xml)])
    print()
    print("MB/s: wall clock; MB/CPU-s: per CPU second of the process (load-independent on a shared box)")
    print(f"{'what':<44} {'wall s':>7} {'MB/s':>7} {'rows/s':>9} {'CPU s':>6} {'MB/CPU-s':>9} {'peak RSS MB':>12}")
    labels = {"reader": "sqlsynth .xml reader → arrow (no database)",
              "seed": "sqlsynth seed (reader + DuckDB table, CLI)",
              "baseline": "ElementTree.iterparse + clear (untyped)"}
    for key, (wall, rss, cpu) in results.items():
        print(f"{labels[key]:<44} {wall:>7.2f} {size / 1e6 / wall:>7.1f} {rows / wall:>9,.0f} {cpu:>6.2f} "
              f"{size / 1e6 / cpu:>9.1f} {rss / 2**20:>12.0f}")
    reader, seed, base = (results[k] for k in ("reader", "seed", "baseline"))
    print()
    print(f"ratio reader speed / iterparse speed:     {base[0] / reader[0]:.2f}x wall, {base[2] / reader[2]:.2f}x CPU")
    print(f"ratio seed speed / iterparse speed:       {base[0] / seed[0]:.2f}x wall, {base[2] / seed[2]:.2f}x CPU")
    print(f"seed throughput vs target 50 MB/s:        {size / 1e6 / seed[0] / 50:.2f}x wall, "
          f"{size / 1e6 / seed[2] / 50:.2f}x per CPU-second")
    print(f"seed peak RSS vs target 300 MB:           {seed[1] / 2**20 / 300:.2f}x of the budget")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
