# Two commands for a newcomer: `make run` (the app on the demo data) and `make test` (the suite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DB     ?= data/warehouse.duckdb
PORT   ?= 8501

.PHONY: run test build build-large bench dictionary clean

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(DB): | $(VENV)/.runtime
	$(PY) -m analytics build --preset demo --db $(DB) --if-missing

run: $(VENV)/.runtime $(DB)
	$(PY) -m analytics migrate --db $(DB)
	$(PY) -m analytics refresh --db $(DB)
	CRO_WAREHOUSE=$(DB) $(VENV)/bin/streamlit run app.py --server.port $(PORT)

test: $(VENV)/.dev
	$(PY) -m pytest

build: $(VENV)/.runtime
	$(PY) -m analytics build --preset demo --db $(DB)

build-large: $(VENV)/.runtime
	$(PY) -m analytics build --preset large --db data/large.duckdb

bench: $(VENV)/.dev
	$(PY) -m analytics bench --db data/large.duckdb --out data/bench-large.json

dictionary: $(VENV)/.runtime
	$(PY) -m analytics dictionary

clean:
	rm -rf $(VENV) .pytest_cache
