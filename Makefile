# Videoflix: `make run` starts everything on the embedded default; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
FLASK := $(PY) -m flask --app wsgi
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test venv dev-venv migrate worker bench-transcode bench-serve clean help

help:
	@echo "make run    - set up .venv, migrate, start the web server and a worker (embedded default)"
	@echo "make test   - set up .venv and run the whole test suite"
	@echo "make bench-transcode | bench-serve - benchmarks (see bench/)"

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

dev-venv: $(VENV)/.installed-dev

migrate: venv
	@mkdir -p instance media
	$(FLASK) db upgrade

run: migrate
	$(FLASK) dev

worker: venv
	$(FLASK) worker

test: dev-venv
	$(PY) -m pytest $(PYTEST_ARGS)

bench-transcode: dev-venv
	$(PY) bench/transcode.py $(BENCH_ARGS)

bench-serve: dev-venv
	$(PY) bench/serve.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance
