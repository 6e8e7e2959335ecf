# The two commands: `make run` (the app with demo data) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test venv lint format messages test-sqlite clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: venv
	scripts/run.sh

test: venv
	scripts/install-system-deps.sh
	scripts/test.sh $(ARGS)

# The same suite on the embedded SQLite database (PostgreSQL-only tests skip with their reason).
test-sqlite: venv
	DATABASE_URL=sqlite:///$(CURDIR)/.test-db.sqlite3 scripts/test.sh $(ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

messages: venv
	cd $(CURDIR) && DEBUG=1 $(BIN)/python manage.py makemessages -l en --ignore=.venv --ignore=staticfiles
	DEBUG=1 $(BIN)/python manage.py compilemessages --ignore=.venv

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
