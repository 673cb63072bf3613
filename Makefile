# The README's two commands are `make run` and `make test`; .ci/run calls `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# The embedding server (infinity-emb) in a venv of its own: its pins (numpy<2, sentence-transformers<4) are not ours.
INFINITY := .venv-infinity
DEV_SET := ../shared/eval/realtimeqa-dev
VALIDATION_SET := ../shared/eval/realtimeqa-2024
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test browser services embedding-server lint typecheck ingest-demo serve bench bench-scale eval-dev eval-validation eval-ci eval-gold

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when the dependencies change. Then llama.cpp is compiled for this CPU (AVX-512, VNNI, ...): it
# reads prompts about 2x faster than the portable xllamacpp wheel. pip keeps the built wheel in its cache, so
# it builds once per machine (about 15 minutes on 2 cores); if the build fails, the portable wheel stays, and
# `newsqa bench` names the kernels in use. LLGUIDANCE and BoringSSL are off: both download sources at build time.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	CMAKE_ARGS="-DLLAMA_LLGUIDANCE=OFF -DLLAMA_BUILD_BORINGSSL=OFF" $(BIN)/pip install --quiet --no-deps \
	  --force-reinstall --no-binary xllamacpp "xllamacpp==$$($(BIN)/pip show xllamacpp | sed -n 's/^Version: //p')" \
	  || echo "warning: llama.cpp could not be built for this CPU; the portable xllamacpp wheel stays (slower)"
	touch $@

# `make embedding-server`: the OpenAI-compatible embeddings server the tests and deploy/local.py start
# (tests/test_embedding_server.py), about 3 minutes once. torch is the CPU wheel pyproject pins, never a CUDA build.
INFINITY_VERSION := 0.0.78
embedding-server: $(INFINITY)/.installed-$(INFINITY_VERSION)

$(INFINITY)/.installed-$(INFINITY_VERSION):
	$(PYTHON) -m venv $(INFINITY)
	$(INFINITY)/bin/pip install --quiet "infinity-emb[server,torch]==$(INFINITY_VERSION)" \
	  "torch==$$(sed -n 's/.*"torch==\([^"]*\)".*/\1/p' pyproject.toml)"
	touch $@

run: $(VENV)/.installed ingest-demo serve

ingest-demo: $(VENV)/.installed
	$(BIN)/newsqa ingest demo

serve: $(VENV)/.installed
	$(BIN)/newsqa serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed lint typecheck browser services embedding-server
	$(BIN)/pytest -q

# The chat page's tests drive Debian's Chromium; installed when missing and we may (root with apt), else they skip.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    { apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; }; }; } || \
	  echo "chromium/chromium-driver not installed: the browser tests will skip"

# Redis (the shared rate limits) and nginx (the Chroma token check) for their tests, installed the same way.
services:
	@command -v redis-server >/dev/null && { command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; } || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    { apt-get install -y -q redis-server nginx >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q redis-server nginx >/dev/null 2>&1; }; }; } || \
	  echo "redis-server/nginx not installed: the shared-limits and Chroma-auth tests will skip"

lint: $(VENV)/.installed
	$(BIN)/ruff check .

typecheck: $(VENV)/.installed
	$(BIN)/python .ci/typecheck.py

bench: $(VENV)/.installed
	$(BIN)/newsqa bench --articles $(DEV_SET)/articles.jsonl --questions $(DEV_SET)/questions.jsonl --answers 10

bench-scale: $(VENV)/.installed
	$(BIN)/newsqa bench --scale --articles $(DEV_SET)/articles.jsonl --questions $(DEV_SET)/questions.jsonl

eval-dev: $(VENV)/.installed
	$(BIN)/newsqa eval --questions $(DEV_SET)/questions.jsonl --articles $(DEV_SET)/articles.jsonl --out eval-runs/dev

# The shared validation set (other weeks than the dev set): what a mechanism or threshold is judged on.
eval-validation: $(VENV)/.installed
	$(BIN)/newsqa eval --questions $(VALIDATION_SET)/questions.jsonl --articles $(VALIDATION_SET)/articles.jsonl --out eval-runs/validation

# The project's own gold set over the demo corpus (in the repo: runs on a plain clone).
eval-gold: $(VENV)/.installed
	$(BIN)/newsqa eval --questions eval/gold/demo.jsonl --articles demo --out eval-runs/gold

# Retrieval regression floor, run by CI: fails when gold hit@5 on the dev set drops below 0.85.
eval-ci: $(VENV)/.installed
	$(BIN)/newsqa eval --questions $(DEV_SET)/questions.jsonl --articles $(DEV_SET)/articles.jsonl \
		--retrieval-only --min-hit-at-5 0.85 --out eval-runs/ci
