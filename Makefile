# Shouwang — two commands set up a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export FLASK_APP := app:create_app
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test lint typecheck install install-test translations translations-extract translations-update translations-init browser shell-tools nginx cjk-font pdf-tools upgrade serve worker bench bench-autofill bench-checkin bench-notifications bench-leaderboard bench-reports bench-shift-change clean

# The installer: uv (from PyPI, into the virtualenv) when it can be had, about five times faster
# than pip on a cold machine; pip otherwise, or always with INSTALLER=pip. uv does not read pip's
# configuration: a mirror is UV_DEFAULT_INDEX for uv (PIP_INDEX_URL for pip).
INSTALLER ?= auto

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Python writes bytecode on first import, so uv need not compile at install; but where
# PYTHONDONTWRITEBYTECODE is set (containers, CI) nothing would ever be cached and each process
# would compile the whole app again (5-8 s), so then compile at install, as pip always does.
UV_COMPILE := $(if $(PYTHONDONTWRITEBYTECODE),--compile-bytecode)

# $(call install_packages,REQUIREMENT): uv when it installs, else pip (a failed uv run falls back too).
define install_packages
	@if [ "$(INSTALLER)" != pip ] && { [ -x $(BIN)/uv ] || $(BIN)/python -m pip install --quiet "uv>=0.13"; } \
	    && echo "uv pip install -e '$(1)'" \
	    && $(BIN)/uv pip install --quiet $(UV_COMPILE) --python $(BIN)/python -e '$(1)'; then :; \
	else \
	  echo "pip install -e '$(1)'" && $(BIN)/python -m pip install --quiet --upgrade pip \
	    && $(BIN)/python -m pip install --quiet -e '$(1)'; \
	fi
endef

# What the application needs (make run, serve, worker, benchmarks); reinstalled when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(call install_packages,.)
	touch $@

# ...plus the test tools, for make test only.
$(VENV)/.installed-test: $(VENV)/.installed
	$(call install_packages,.[test])
	touch $@

install: $(VENV)/.installed translations cjk-font
install-test: $(VENV)/.installed-test translations cjk-font

## translations: compile each translations/<lang>/LC_MESSAGES/messages.po to its .mo (a build product,
## not in git; the app refuses to start without it). Recompiled when the .po changes.
CATALOGUES := $(wildcard translations/*/LC_MESSAGES/messages.po)
translations: $(CATALOGUES:.po=.mo)

translations/%/LC_MESSAGES/messages.mo: translations/%/LC_MESSAGES/messages.po | $(VENV)/.installed
	$(BIN)/pybabel --quiet compile -i $< -o $@

## translations-extract: the texts marked in the code into translations/messages.pot (core/catalogues.py)
translations-extract: $(VENV)/.installed
	$(BIN)/python -m core.catalogues extract

## translations-update: extract, then bring every language's .po up to the template (new texts untranslated)
translations-update: $(VENV)/.installed
	$(BIN)/python -m core.catalogues update

## translations-init LOCALE=mn: start the catalogue of a new language from the template
translations-init: $(VENV)/.installed
	@[ -n "$(LOCALE)" ] || { echo "usage: make translations-init LOCALE=<language code, e.g. mn>" >&2; exit 1; }
	$(BIN)/python -m core.catalogues init $(LOCALE)

# The API docs page and the console are tested in a real browser: Debian's chromium, and a Chinese
# font for the console's screenshots (fonts-wqy-microhei, 5 MB), installed when missing (as root).
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  { echo "Install Chromium (Debian package chromium) for the browser test" >&2; exit 1; }
	@[ -n "$$(fc-list :lang=zh 2>/dev/null)" ] || \
	  { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null; } || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null; } || \
	  echo "No Chinese font: the console's screenshots will show boxes for Chinese (Debian package fonts-wqy-microhei)" >&2

# Certificates (records/certificates/document.py) are printed in Chinese with a TrueType CJK font from
# Debian (fonts-wqy-microhei, 5 MB; never fetched at run time), installed when missing (as root).
# Without one the app still runs and a certificate's PDF answers 503 cjk_font_missing.
CJK_FONT_FILE := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
cjk-font:
	@[ -f "$(CJK_FONT_FILE)" ] || [ -n "$$RECORDS_CJK_FONT" ] || \
	  { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null 2>&1; } || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null; } || \
	  echo "No Chinese font for certificates: install the Debian package fonts-wqy-microhei as root" \
	       "(or set RECORDS_CJK_FONT to a .ttf/.ttc file); until then certificate PDFs answer 503" >&2

# The certificate tests read the PDFs with pdftotext, render them with pdftoppm (poppler-utils) and
# decode their QR code with zbarimg (zbar-tools), installed when missing (as root).
pdf-tools:
	@{ command -v pdftotext && command -v pdftoppm && command -v zbarimg; } >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils zbar-tools >/dev/null; } || \
	  { echo "Install poppler-utils (pdftotext, pdftoppm) and zbar-tools (zbarimg) for the certificate tests" >&2; exit 1; }

# README's walk-through is run as written by a test, with curl and jq: installed when missing (as root).
shell-tools:
	@{ command -v curl && command -v jq; } >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl jq >/dev/null; } || \
	  { echo "Install curl and jq for the README walk-through test" >&2; exit 1; }

# The shift-change load test puts nginx in front of gunicorn, as production does (bench/shift_change/proxy.py
# starts its own unprivileged nginx; docs/deploy.md): Debian's nginx-light, installed when missing (as root).
# Not needed by make test.
nginx:
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; } || \
	  { echo "Install nginx (Debian package nginx-light) for the shift-change load test" \
	         "(or run bench/shift_change/run.py --no-proxy, gunicorn alone)" >&2; exit 1; }

## run: embedded default — SQLite under instance/, demo data seeded once, API on http://$(HOST):$(PORT)
# prepare-demo = flask db upgrade, tasks run-periodic, seed-demo, in one process (an app start less each).
# CONSOLE_INSECURE_COOKIES: the console's cookies without Secure, as make run serves plain HTTP.
run: install
	$(BIN)/flask prepare-demo
	CONSOLE_INSECURE_COOKIES=1 $(BIN)/flask run --host $(HOST) --port $(PORT)

## typecheck: mypy over the application, as configured in pyproject.toml ([tool.mypy])
typecheck: install-test
	$(BIN)/mypy

## test: lint and the type check, then the whole suite on SQLite and, when TEST_DATABASE_URL is set
## (required under CI=true: some races are caught only on PostgreSQL), on PostgreSQL at the same time.
# The two passes share nothing a test writes (each its own temporary directory, its own Redis
# database, broker queues and PostgreSQL databases named per run), so they run side by side: the
# SQLite pass keeps one core busy in Python, the PostgreSQL pass waits on its server half the time,
# and on two cores the pair takes little more than the longer one. The PostgreSQL pass's output is
# printed after the SQLite pass's; `make test` fails if either fails.
test: install-test browser shell-tools pdf-tools lint typecheck
	@if [ "$$CI" = true ] && [ -z "$$TEST_DATABASE_URL" ]; then \
		echo "CI=true but TEST_DATABASE_URL is not set: the PostgreSQL run is required in CI" >&2; exit 1; fi
	@postgres_pid=; postgres_log=$$(mktemp); postgres_tmp=$$(mktemp -d); \
	trap 'kill $$postgres_pid 2>/dev/null; rm -rf "$$postgres_log" "$$postgres_tmp"' EXIT; \
	if [ -n "$$TEST_DATABASE_URL" ]; then \
		echo "== on PostgreSQL ($$TEST_DATABASE_URL) beside SQLite; its output follows SQLite's"; \
		TEST_REDIS_URL="$${TEST_REDIS_URL_POSTGRES_PASS:-redis://127.0.0.1:6379/14}" \
		$(BIN)/python -m pytest -q -p no:cacheprovider --basetemp="$$postgres_tmp/pytest" --durations=15 \
			>"$$postgres_log" 2>&1 & postgres_pid=$$!; \
	else echo "(TEST_DATABASE_URL not set: PostgreSQL run skipped)"; fi; \
	echo "== on SQLite"; \
	env -u TEST_DATABASE_URL $(BIN)/python -m pytest -q --durations=15; sqlite_status=$$?; \
	postgres_status=0; \
	if [ -n "$$postgres_pid" ]; then \
		wait $$postgres_pid; postgres_status=$$?; postgres_pid=; \
		echo "== on PostgreSQL ($$TEST_DATABASE_URL)"; cat "$$postgres_log"; \
	fi; \
	[ $$sqlite_status = 0 ] && [ $$postgres_status = 0 ]

## lint: ruff (lint and import order; configured in pyproject.toml), run by make test
lint: install-test
	$(BIN)/ruff check .

## upgrade: apply migrations to DATABASE_URL (or the embedded SQLite)
upgrade: install
	$(BIN)/flask db upgrade

## serve: production-style server (gunicorn, gunicorn.conf.py: JSON logs, metrics of all workers);
## set DATABASE_URL, REDIS_URL and secrets first
serve: install
	$(BIN)/gunicorn --config gunicorn.conf.py --workers $${WEB_CONCURRENCY:-4} --bind $(HOST):$(PORT) "app:create_app()"

## worker: Celery worker with beat embedded (one machine); set CELERY_BROKER_URL first
worker: install
	$(BIN)/celery -A worker worker --beat --loglevel INFO

bench: install
	bash bench/run.sh

## bench-checkin: check-in, /me, /me/shifts and locate against their hand-written floors
## (bench/checkin_floor.py) and the bare endpoint, side by side (recreates test_bench_checkin; ~4 min)
bench-checkin: install
	$(BIN)/python bench/checkin.py

## bench-notifications: a broadcast to 100,000 devices, delivery vs a bare send_each loop (recreates test_bench_notifications)
bench-notifications: install
	$(BIN)/python bench/notifications.py

## bench-leaderboard: district leaderboards over 100,000 volunteers and a year of entries (recreates test_bench_leaderboard)
bench-leaderboard: install
	$(BIN)/python bench/leaderboard.py

## bench-reports: participation and coverage reports of a district with 1,000,000 check-ins a month and a year
## of history, against /healthz and hand-written SQL; a 100,000-row XLSX (seeds test_bench_reports once, ~13 min)
bench-reports: install
	$(BIN)/python bench/reports.py

## bench-autofill: auto-fill solver at 2k×10k and 10k×50k, and the endpoint on PostgreSQL (recreates test_bench)
bench-autofill: install
	$(BIN)/python bench/autofill.py --endpoint

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis .mypy_cache

## bench-shift-change: a city at shift change under Locust with faults (bench/shift_change/run.py; installs the
## bench extra; bench/README.md gives the full run's ARGS). ARGS="--volunteers 1000 --minutes 6 --restart-postgres-at 150"
bench-shift-change: install nginx
	$(call install_packages,.[bench])
	$(BIN)/python bench/shift_change/run.py $(ARGS)
