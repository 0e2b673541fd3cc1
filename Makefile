# Shouwang — two commands set up a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export FLASK_APP := app:create_app
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test install browser upgrade serve worker bench bench-autofill bench-checkin bench-notifications bench-leaderboard clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

# The API docs page is tested in a real browser: Debian's chromium, installed when missing (as root).
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  { echo "Install Chromium (Debian package chromium) for the browser test" >&2; exit 1; }

## run: embedded default — SQLite under instance/, demo data seeded once, API on http://$(HOST):$(PORT)
run: install
	$(BIN)/flask db upgrade
	$(BIN)/flask seed-demo
	$(BIN)/flask tasks run-periodic
	$(BIN)/flask run --host $(HOST) --port $(PORT)

## test: the whole suite on SQLite, then on PostgreSQL too when TEST_DATABASE_URL is set
## (required under CI=true: some races are caught only on PostgreSQL)
test: install browser
	@if [ "$$CI" = true ] && [ -z "$$TEST_DATABASE_URL" ]; then \
		echo "CI=true but TEST_DATABASE_URL is not set: the PostgreSQL run is required in CI" >&2; exit 1; fi
	env -u TEST_DATABASE_URL $(BIN)/python -m pytest -q
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		echo "== again on PostgreSQL: $$TEST_DATABASE_URL"; \
		$(BIN)/python -m pytest -q -p no:cacheprovider; \
	else echo "(TEST_DATABASE_URL not set: PostgreSQL run skipped)"; fi

## upgrade: apply migrations to DATABASE_URL (or the embedded SQLite)
upgrade: install
	$(BIN)/flask db upgrade

## serve: production-style server (gunicorn); set DATABASE_URL, REDIS_URL and secrets first
serve: install
	$(BIN)/gunicorn --workers $${WEB_CONCURRENCY:-4} --bind $(HOST):$(PORT) "app:create_app()"

## worker: Celery worker with beat embedded (one machine); set CELERY_BROKER_URL first
worker: install
	$(BIN)/celery -A worker worker --beat --loglevel INFO

bench: install
	bash bench/run.sh

## bench-checkin: check-in throughput and p99 against the bare endpoint (recreates test_bench_checkin)
bench-checkin: install
	$(BIN)/python bench/checkin.py

## bench-notifications: a broadcast to 100,000 devices, delivery vs a bare send_each loop (recreates test_bench_notifications)
bench-notifications: install
	$(BIN)/python bench/notifications.py

## bench-leaderboard: district leaderboards over 100,000 volunteers and a year of entries (recreates test_bench_leaderboard)
bench-leaderboard: install
	$(BIN)/python bench/leaderboard.py

## bench-autofill: auto-fill solver at 2k×10k and 10k×50k, and the endpoint on PostgreSQL (recreates test_bench)
bench-autofill: install
	$(BIN)/python bench/autofill.py --endpoint

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis
