# Two commands do all set-up on a fresh clone with Python 3.11 and make:
#   make run    start displayd on the embedded SQLite database
#   make test   install what the tests need and run them (SQLite and PostgreSQL)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run serve test test-fast test-long lint venv clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python requirements.lock pyproject.toml
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# Browser tests drive Debian's Chromium through Playwright; no browser is ever downloaded.
browser:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; }

# The demo: var/demo.db made afresh, the section IV slogans, simulated boards, URLs and keys printed.
run: $(STAMP)
	$(BIN)/displayd demo

test: $(STAMP) browser
	$(BIN)/ruff check displayd tests bench
	$(BIN)/mypy displayd bench
	$(BIN)/python -m pytest -q -m "not slow" -n 2 --dist loadfile

# The pure and unit tests: no database, no server process, no browser; well under a minute.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not db and not process and not slow"

test-long: $(STAMP) browser
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check displayd tests bench
	$(BIN)/mypy displayd bench

clean:
	rm -rf $(VENV) build dist *.egg-info
