"""Run time of staged ai_query on Spark (the plan is made at compile time by spark_ai_plan.py).

Per stage, before the model's SELECT runs:
1. the request query gives one row per request; distinct fingerprints are keyed in the executors by
   BatchAnswerer.keys — the very key function the DuckDB path uses (sqlsynth/llm/batch.py);
2. keys already in sqlsynth.cache are dropped (anti-join), the rest de-duplicated and repartitioned
   to P tasks; each task answers its rows through BatchAnswerer.answer — the DuckDB path's retries,
   backoff, rate limits, structured-output validation and re-asks — with the endpoint's
   max_concurrency split over the P tasks (c = max_concurrency / P in flight per task, so the server
   sees at most max_concurrency in all);
3. answers are spooled as they complete (spark_ai_spool.py) and moved into sqlsynth.cache, every call
   into sqlsynth.calls;
4. the stage's answers view (fingerprint → cached answer, or this run's error) is what the SELECT joins.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from typing import Any

from ..errors import ConfigError
from ..llm.errors import BudgetError, LLMCallError, LLMError
from .spark_ai_plan import ERROR, FINISH, FP, RESPONSE, AIStage
from .spark_ai_spool import SCHEMA, SpoolCache, ensure_tables, ingest

# Models run in parallel threads; two stages sending the same requests at once would both pay (the
# DuckDB path shares in-flight requests within the process). One stage at a time: the second finds the
# first's answers in the cache. Each stage still runs its P tasks in parallel.
_one_stage_at_a_time = threading.Lock()
CHUNK_ROWS = 4096  # rows per BatchAnswerer.answer call in a task (DuckDB hands it 2,048)
KEYED_SCHEMA = "fp string, key string, endpoint string, request string, parameters string"
OUTCOME_SCHEMA = ("key string, endpoint string, error string, calls long, retries long, "
                  "prompt_tokens long, completion_tokens long, cost double")


def _unwrap(text: str | None, field: str) -> str | None:
    """Spark's to_json(named_struct(field, x)) → the JSON text DuckDB's to_json(x) gives."""
    if text is None:
        return None
    value = json.loads(text).get(field)
    return None if value is None else json.dumps(value)


class KeyRequests:
    """mapInArrow: (fp, endpoint, request, parameters) → the same plus the cache key (pure, retry-safe)."""

    def __init__(self, config: Any, models: dict[str, Any], response_format: str | None):
        self.config, self.models, self.response_format = config, models, response_format

    def __call__(self, batches: Any) -> Any:
        import pyarrow as pa

        from ..llm.batch import BatchAnswerer

        answerer = BatchAnswerer(None, self.config, self.models)  # type: ignore[arg-type]  # keys() reads no cache
        for batch in batches:
            rows = batch.to_pylist()
            for row in rows:
                row["request"] = _unwrap(row["request"], "r")
                row["parameters"] = _unwrap(row["parameters"], "p")
            for endpoint, group in _by_endpoint(rows).items():
                keys = answerer.keys(endpoint, [r["request"] for r in group], self.response_format,
                                     [r["parameters"] for r in group])
                for row, key in zip(group, keys, strict=True):
                    row["key"] = key
            yield pa.RecordBatch.from_pylist(
                [{k: r[k] for k in ("fp", "key", "endpoint", "request", "parameters")} for r in rows])


class CallMisses:
    """mapInArrow over one of the P partitions of cache misses: answer them, spool as they complete."""

    def __init__(self, config: Any, models: dict[str, Any], response_format: str | None, node: str,
                 spool: str):
        self.config, self.models, self.response_format = config, models, response_format
        self.node, self.spool = node, spool

    def __call__(self, batches: Any) -> Any:
        import pyarrow as pa

        from ..llm import usage
        from ..llm.batch import BatchAnswerer

        usage.reset_usage()  # this worker process's counters: one task at a time
        answerer = BatchAnswerer(SpoolCache(self.spool), self.config, self.models)  # type: ignore[arg-type]
        rows = [row for batch in batches for row in batch.to_pylist()]
        for endpoint, group in _by_endpoint(rows).items():
            for start in range(0, len(group), CHUNK_ROWS):
                chunk = group[start:start + CHUNK_ROWS]
                outcomes = answerer.answer(endpoint, [r["request"] for r in chunk], self.response_format,
                                           [r["parameters"] for r in chunk], self.node)
                yield pa.RecordBatch.from_pylist(
                    [{"key": r["key"], "endpoint": endpoint, "error": o.error} for r, o in zip(chunk, outcomes, strict=True)],
                    schema=_outcome_schema())
        summary = usage.usage_summary()["endpoints"]
        yield pa.RecordBatch.from_pylist(
            [{"key": None, "endpoint": name, "error": None, **{k: c[k] for k in
              ("calls", "retries", "prompt_tokens", "completion_tokens", "cost")}}
             for name, c in summary.items()], schema=_outcome_schema())


def _outcome_schema() -> Any:
    import pyarrow as pa

    return pa.schema([("key", pa.string()), ("endpoint", pa.string()), ("error", pa.string()),
                      ("calls", pa.int64()), ("retries", pa.int64()), ("prompt_tokens", pa.int64()),
                      ("completion_tokens", pa.int64()), ("cost", pa.float64())])


def _by_endpoint(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["endpoint"] is None:
            raise LLMError("ai_query: the endpoint name is NULL", hint="ai_query('default', prompt)")
        groups.setdefault(row["endpoint"], []).append(row)
    return groups


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


def _task_config(config: Any, endpoint_names: list[str], tasks: int) -> Any:
    """The project config the tasks see: each endpoint's limits divided over the P tasks."""
    from ..llm import endpoints

    changed = dict(config.endpoints)
    for name in endpoint_names:
        endpoint = endpoints.resolve(name, config)
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


def _check_budget(db: Any, needed: dict[str, int]) -> None:
    from ..llm import endpoints
    from ..llm.usage import calls_made

    for name, count in needed.items():
        limit = endpoints.resolve(name, db.project.config).max_calls
        made = calls_made(name)
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


def _record_usage(node: str, summaries: list[Any], rows: dict[str, int], cached: dict[str, int],
                  errors: dict[str, int]) -> None:
    from ..llm.usage import Counters, record

    spent: dict[str, Counters] = {}
    for row in summaries:
        counters = spent.setdefault(row["endpoint"], Counters())
        counters.add(Counters(calls=row["calls"], retries=row["retries"], prompt_tokens=row["prompt_tokens"],
                              completion_tokens=row["completion_tokens"], cost=row["cost"]))
    for name, total in rows.items():
        counters = spent.setdefault(name, Counters())
        counters.rows, counters.cached, counters.errors = total, cached.get(name, 0), errors.get(name, 0)
        record(name, node, counters)


def _call_misses(db: Any, stage: AIStage, misses: Any, needed: dict[str, int], spool: str) -> Any:
    """Send the misses (P tasks, c in flight each); their outcomes, computed exactly once."""
    tasks = max(1, min(partitions(db), sum(needed.values())))
    config = _task_config(db.project.config, list(needed), tasks)
    function = CallMisses(config, _shippable(db.project.pydantic_models), stage.response_format, stage.node,
                          spool)
    try:
        return misses.repartition(tasks).mapInArrow(function, OUTCOME_SCHEMA).localCheckpoint(eager=True)
    finally:
        ingest(db.spark, spool)  # whatever was answered, even if the job failed


def run_stage(db: Any, stage: AIStage, spool: str) -> None:
    spark = db.spark
    requests = spark.sql(stage.request_sql).where("fp is not null").dropDuplicates(["fp"])
    function = KeyRequests(db.project.config, _shippable(db.project.pydantic_models), stage.response_format)
    keyed = requests.mapInArrow(function, KEYED_SCHEMA).localCheckpoint(eager=True)
    keyed_view = f"{stage.view}__keyed"  # per stage: models run in parallel threads on one session
    keyed.createOrReplaceTempView(keyed_view)
    misses = spark.sql(f"""select key, first(endpoint) as endpoint, first(request) as request,
                                  first(parameters) as parameters
                           from {keyed_view} k where not exists (select 1 from {SCHEMA}.cache c where c.key = k.key)
                           group by key""")
    rows = {r["endpoint"]: r["n"] for r in keyed.groupBy("endpoint").count().withColumnRenamed("count", "n").collect()}
    needed = {r["endpoint"]: r["n"] for r in misses.groupBy("endpoint").count().withColumnRenamed("count", "n").collect()}
    _check_budget(db, needed)
    errors_sql, summaries, failed = "select cast(null as string) as key, cast(null as string) as error limit 0", [], {}
    if needed:
        outcomes = _call_misses(db, stage, misses, needed, spool)
        outcomes.createOrReplaceTempView(f"{stage.view}__outcomes")
        errors_sql = f"select key, error from {stage.view}__outcomes where key is not null and error is not null"
        summaries = outcomes.where("key is null").collect()
        failed = {r["endpoint"]: r["n"] for r in outcomes.where("key is not null and error is not null")
                  .groupBy("endpoint").count().withColumnRenamed("count", "n").collect()}
    cached = {name: total - needed.get(name, 0) for name, total in rows.items()}
    _record_usage(stage.node, summaries, rows, cached, failed)
    spark.sql(f"""
        create or replace temporary view {stage.view} as
        select k.fp as {FP}, c.response as {RESPONSE}, e.error as {ERROR},
               case when c.key is not null then c.finish_reason when e.error is not null then 'error' end as {FINISH}
        from {keyed_view} k
        left join {SCHEMA}.cache c on c.key = k.key
        left join ({errors_sql}) e on e.key = k.key""")
    if stage.fail_on_error and failed:
        _raise_failed(spark, stage, failed, rows)


def _raise_failed(spark: Any, stage: AIStage, failed: dict[str, int], rows: dict[str, int]) -> None:
    endpoint, count = next(iter(failed.items()))
    first = spark.sql(f"select error from {stage.view}__outcomes where endpoint = :e and error is not null "
                      "limit 1", args={"e": endpoint}).collect()[0][0]
    raise LLMCallError(
        f"model '{stage.node}': ai_query on endpoint '{endpoint}' failed for {count} of {rows[endpoint]} rows; "
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
