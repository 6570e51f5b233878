# processdesk: `make run` serves a demo desk on 127.0.0.1:$(PORT); `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
FLASK := $(BIN)/flask --app app

.PHONY: run test test-postgres bench lint setup venv npm vendor translations db deploy demo backup clean

setup: venv npm vendor translations

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

npm: node_modules/.installed

# bpmn-js for the pages (record diagrams now, the modeler later), served from app/web/static/vendor/
# (gitignored): the viewer and modeler bundles and their CSS (dist/assets, with the bpmn font).
VENDOR := app/web/static/vendor
vendor: npm
	mkdir -p $(VENDOR)/assets
	cp node_modules/bpmn-js/dist/bpmn-viewer.production.min.js node_modules/bpmn-js/dist/bpmn-modeler.production.min.js $(VENDOR)/
	cp -R node_modules/bpmn-js/dist/assets/. $(VENDOR)/assets/

# The web pages' catalogs: .po files are committed, the .mo files Flask-Babel reads are built here.
# Only catalogs whose .po is newer than their .mo are compiled: a second `make test` running beside
# a first (CI's two databases) must not rewrite the files the first is reading.
translations: venv
	$(BIN)/python -c 'from app.web.i18n import compile_catalogs; compile_catalogs()'

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

db: venv
	$(FLASK) db upgrade

deploy: db
	$(FLASK) processes deploy

# Links in notifications point at the address `make run` serves unless PROCESSDESK_PUBLIC_URL says
# otherwise: those the demo seed sends as well as those sent later.
PUBLIC_URL := PROCESSDESK_PUBLIC_URL=$${PROCESSDESK_PUBLIC_URL:-http://127.0.0.1:$(PORT)}

demo: deploy
	$(PUBLIC_URL) PROCESSDESK_DEMO_MODE=1 $(FLASK) demo seed

run: setup demo
	$(PUBLIC_URL) \
	PROCESSDESK_DEMO_MODE=1 PROCESSDESK_SCHEDULER_ENABLED=1 $(FLASK) run --host 127.0.0.1 --port $(PORT)

# the whole suite in two processes side by side (tools/test_halves.py); with a test path, just that
test: setup
	$(BIN)/python tools/test_halves.py $(PYTEST_ARGS)

test-postgres: setup
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} $(BIN)/python -m pytest -q $(PYTEST_ARGS)

backup: venv
	mkdir -p backups
	$(FLASK) db backup backups/processdesk-$$(date -u +%Y%m%dT%H%M%SZ).pdbak.gz

bench: venv
	$(BIN)/python bench/run.py $(BENCH_ARGS)

lint: venv
	$(BIN)/ruff check app tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) node_modules instance .pytest_cache
