# Linli — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: run test install lint bench check-migrations clean i18n

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Installs the package with its dev extras; redone whenever pyproject.toml changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(STAMP)

## make run: create .venv, install, migrate instance/linli.db, load the demo on first run, start the
## scheduler (its own process: service levels, expiries, notifications) and serve on :5000 (PORT overrides)
run: install
	$(BIN)/linli db upgrade
	$(BIN)/linli seed demo --if-empty
	mkdir -p instance; $(BIN)/linli scheduler 2>>instance/scheduler.log & SCHEDULER=$$!; \
	  trap 'kill $$SCHEDULER 2>/dev/null' EXIT INT TERM; \
	  echo "scheduler running (pid $$SCHEDULER, log: instance/scheduler.log)"; \
	  $(BIN)/linli serve

## make test: install the dev extras and run the whole suite (SQLite by default; TEST_DATABASE_URL for PostgreSQL)
test: install
	$(BIN)/python -m pytest

## make lint: ruff and the import contracts (the pure core imports neither Flask nor SQLAlchemy)
lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

## make bench: the benchmarks, one JSON line per case (matching: bench/match_bench.py)
bench: install
	$(BIN)/python bench/match_bench.py
	$(BIN)/python bench/claims.py
	$(BIN)/python bench/ledger_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

## make i18n: extract the pages' messages into web/translations/messages.pot, merge them into the
## Chinese catalogue (translate the new ones in messages.po), and compile it
i18n: install
	$(BIN)/pybabel extract -F babel.cfg -k _l -k N_ -o web/translations/messages.pot --no-location --sort-output --project Linli .
	$(BIN)/pybabel update -i web/translations/messages.pot -d web/translations -l zh --ignore-obsolete --no-fuzzy-matching
	$(BIN)/python web/translations/fill_zh.py
	$(BIN)/pybabel compile -d web/translations
