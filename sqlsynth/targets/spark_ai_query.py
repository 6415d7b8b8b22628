"""Run time of staged ai_query on Spark (the plan is made at compile time by spark_ai_plan.py).

Each stage is one Spark job before the model's SELECT runs (a second one, counting the misses, only
when an endpoint sets max_calls):
1. the request query gives one row per request; its fingerprints are keyed in the executors by
   BatchAnswerer.keys — the very key function the DuckDB path uses (sqlsynth/llm/batch.py);
2. the keyed rows are left-joined with sqlsynth.cache and hash-partitioned by key to P tasks (equal
   keys meet in one task, so none is sent twice); each task passes cached rows through and answers
   the rest through BatchAnswerer.answer — the DuckDB path's retries, backoff, rate limits,
   structured-output validation and re-asks — with the endpoint's max_concurrency split over the P
   tasks (c = max_concurrency / P in flight per task, so the server sees at most max_concurrency);
   the tasks also count rows, cache hits, calls and errors (no separate count jobs);
3. answers are spooled as they complete (spark_ai_spool.py) and moved into sqlsynth.cache, every call
   into sqlsynth.calls, once, after the job;
4. the job's output, kept (localCheckpoint), is the answers view (fingerprint → answer or this run's
   error) the SELECT joins.
"""

from __future__ import annotations

import re
import sys
import threading
from typing import Any

from ..errors import ConfigError
from ..llm.errors import BudgetError, LLMCallError, LLMError
from .spark_ai_plan import ERROR, FINISH, FP, RESPONSE, AIStage
from .spark_ai_spool import SCHEMA, ensure_tables, ingest
from .spark_ai_tasks import ANSWER_SCHEMA, KEYED_SCHEMA, AnswerRows, KeyRequests

# Models run in parallel threads; two stages sending the same requests at once would both pay (the
# DuckDB path shares in-flight requests within the process). One stage at a time: the second finds the
# first's answers in the cache. Each stage still runs its P tasks in parallel.
_one_stage_at_a_time = threading.Lock()


# ----------------------------------------------------------------------------------- driver side

def spool_root(db: Any) -> str:
    target = db.project.target
    if getattr(target, "ai_spool", None):
        return target.ai_spool
    if str(getattr(target, "remote", "")).startswith("local"):
        return str((db.project.target_dir / "spark" / "ai_spool").resolve())
    raise ConfigError(f"target '{db.project.target_name}': ai_query on a Spark cluster needs ai_spool:",
                      path="project.yml",
                      hint="set ai_spool: to a folder or URI (s3://..., hdfs://...) that both the executors "
                           "and this machine can write")


def partitions(db: Any) -> int:
    """P, the number of tasks that call endpoints at the same time."""
    target = db.project.target
    if getattr(target, "ai_query_partitions", None):
        return int(target.ai_query_partitions)
    match = re.fullmatch(r"local\[(\d+)\]", str(getattr(target, "remote", "")))
    if match:
        return int(match.group(1))
    try:
        return int(db.spark.sparkContext.defaultParallelism)
    except Exception:  # Spark Connect has no SparkContext
        return int(db.spark.conf.get("spark.sql.shuffle.partitions", "2"))


def _task_config(config: Any, tasks: int) -> Any:
    """The project config the tasks see: each endpoint's limits divided over the P tasks."""
    changed = dict(config.endpoints)
    for name, endpoint in config.endpoints.items():
        update: dict[str, Any] = {"max_concurrency": max(1, endpoint.max_concurrency // tasks)}
        for limit in ("requests_per_minute", "tokens_per_minute"):
            if getattr(endpoint, limit):
                update[limit] = getattr(endpoint, limit) / tasks
        changed[name] = endpoint.model_copy(update=update)
    return config.model_copy(update={"endpoints": changed})


def _shippable(models: dict[str, Any]) -> dict[str, Any]:
    """udfs/ pydantic models live in modules the executors cannot import: pickle them by value."""
    from pyspark import cloudpickle

    for model in models.values():
        module = sys.modules.get(model.__module__)
        if module is not None and model.__module__.startswith("sqlsynth_udfs"):
            cloudpickle.register_pickle_by_value(module)
    return models


def _check_budget(db: Any, joined: Any) -> None:
    """max_calls is checked before anything is sent: only then do the misses get counted first (a job)."""
    from ..llm.usage import calls_made

    limits = {name: e.max_calls for name, e in db.project.config.endpoints.items() if e.max_calls is not None}
    if not limits:
        return
    misses = joined.where("cached is null").select("endpoint", "key").distinct().groupBy("endpoint").count()
    needed = {r["endpoint"]: r["count"] for r in misses.collect()}
    for name, count in needed.items():
        limit, made = limits.get(name), calls_made(name)
        if limit is not None and made + count > limit:
            raise BudgetError(f"endpoint '{name}': {count} uncached calls needed now, {made} already made "
                              f"in this run, max_calls is {limit}",
                              hint="run `sqlsynth plan` to see the numbers; raise max_calls in project.yml "
                                   "or select fewer models")


def _spark_task_error(exc: Exception) -> LLMError:
    """A task's Python exception arrives inside a JVM stack trace: keep its last 'XxxError: message'."""
    found = re.findall(r"(?m)^\s*(?:[\w.]+\.)?(\w+Error): (.+)$", str(exc))
    message = found[-1][1] if found else (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return LLMError(f"ai_query on Spark failed: {message[:400]}")


def _record_usage(node: str, counters: list[Any]) -> dict[str, tuple[int, int]]:
    """Add the tasks' counters to this run's usage; endpoint → (rows, rows that failed)."""
    from ..llm.usage import Counters, record

    spent: dict[str, Counters] = {}
    for row in counters:
        spent.setdefault(row["endpoint"], Counters()).add(Counters(**{k: row[k] for k in (
            "rows", "cached", "errors", "calls", "retries", "prompt_tokens", "completion_tokens", "cost")}))
    for name, total in spent.items():
        record(name, node, total)
    return {name: (total.rows, total.errors) for name, total in spent.items()}


def _answer(db: Any, stage: AIStage, joined: Any, spool: str) -> Any:
    """Send the misses (P tasks, c in flight each): the stage's answers and counters, computed once."""
    tasks = partitions(db)
    function = AnswerRows(_task_config(db.project.config, tasks), _shippable(db.project.pydantic_models),
                          stage.response_format, stage.node, spool)
    try:
        return joined.repartition(tasks, "key").mapInArrow(function, ANSWER_SCHEMA).localCheckpoint(eager=True)
    finally:
        ingest(db.spark, spool)  # whatever was answered, even if the job failed


def run_stage(db: Any, stage: AIStage, spool: str) -> None:
    """One Spark job: the request query, keyed in the executors, left-joined with the cache, answered."""
    spark = db.spark
    keyed = spark.sql(stage.request_sql).mapInArrow(
        KeyRequests(db.project.config, _shippable(db.project.pydantic_models), stage.response_format), KEYED_SCHEMA)
    cache = spark.table(f"{SCHEMA}.cache").selectExpr("key", "response as cached", "finish_reason as cached_finish")
    joined = keyed.join(cache, "key", "left")
    _check_budget(db, joined)
    answers = _answer(db, stage, joined, spool)
    outcome = _record_usage(stage.node, answers.where("fp is null").collect())
    answers.where("fp is not null").selectExpr(
        f"fp as {FP}", f"response as {RESPONSE}", f"error as {ERROR}", f"finish as {FINISH}",
    ).createOrReplaceTempView(stage.view)
    failed = {name: counts for name, counts in outcome.items() if counts[1]}
    if stage.fail_on_error and failed:
        endpoint, (rows, errors) = next(iter(failed.items()))
        first = answers.where(answers.endpoint == endpoint).where("error is not null").limit(1).collect()[0]["error"]
        raise LLMCallError(
            f"model '{stage.node}': ai_query on endpoint '{endpoint}' failed for {errors} of {rows} rows; "
            f"first error: {first}",
            hint="rows that succeeded are cached, so a re-run only retries the failed ones; "
                 "or pass failOnError := false to keep going and get the error per row")


def run_stages(db: Any, stages: list[AIStage]) -> None:
    """Answer a model's ai_query calls, in order, before its SELECT runs."""
    if not stages:
        return
    spool = spool_root(db)
    ensure_tables(db.spark, getattr(db.project.target, "table_format", "parquet"))
    ingest(db.spark, spool)  # a run killed half way left answers in the spool: they are not paid again
    for stage in stages:
        try:
            with _one_stage_at_a_time:
                run_stage(db, stage, spool)
        except LLMError:
            raise
        except Exception as exc:  # a task's failure comes back as a JVM error wrapping the Python one
            if "Error: " not in str(exc) or "PythonException" not in str(exc) + type(exc).__name__:
                raise
            raise _spark_task_error(exc) from None
