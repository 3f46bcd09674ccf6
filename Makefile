# Videoflix: `make run` starts everything on the embedded default; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
FLASK := $(PY) -m flask --app wsgi
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test test-fast lint venv dev-venv migrate worker bench-transcode bench-serve bench-catalogue bench-storage bench-analytics bench-bucket-outage bench-progressive clean help player player-deps smoke smoke-s3 base-images images smoke-compose

help:
	@echo "make run    - set up .venv, migrate, start the web server and a worker (embedded default)"
	@echo "make test   - set up .venv, run ruff and the import layers (make lint) and the whole test suite"
	@echo "make test-fast - the quick loop: the suite without ffmpeg runs, real processes, browsers or a bucket"
	@echo "make bench-transcode | bench-serve | bench-catalogue | bench-storage | bench-analytics | bench-progressive - benchmarks (see bench/)"
	@echo "make smoke  - production smoke test: gunicorn, worker, nginx on PostgreSQL + Redis (.ci/smoke.sh)"
	@echo "make smoke-s3 - scaled out: 2 web + 2 workers sharing only PostgreSQL, Redis, a bucket (.ci/smoke-s3.sh)"
	@echo "make base-images - base images from Debian packages (debootstrap; no registry needed): deploy/images/"
	@echo "make images - base-images, then the app and nginx images on them (a running Docker engine)"
	@echo "make smoke-compose - the compose stack end to end on a dockerd of its own (root; .ci/compose.sh)"
	@echo "make player - serve our test player (player/) on http://127.0.0.1:5500 (API: make run)"

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	@test -x $(PY) || $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  echo "$(PYTHON) cannot create a virtual environment (no ensurepip/venv module)."; \
	  echo "On Debian/Ubuntu: apt-get install python3-venv (or python3.X-venv for your version)."; \
	  exit 1; }
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

# ruff, then the import layers (pyproject.toml [tool.importlinter]: a wrong-way import fails).
lint: dev-venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

# The suite runs in TEST_WORKERS processes (pytest-xdist; each test file stays in one of them, so its
# module fixtures are made once). A test mostly waits on real processes (servers, workers, ffmpeg,
# Chromium, pauses), so 4 on a 2-core machine; TEST_WORKERS=0 runs it in this one process.
TEST_WORKERS ?= 4
PYTEST_PARALLEL = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

test: lint
	$(PY) -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

# The quick loop: no ffmpeg transcodes, real processes, browsers or bucket (markers: tests/conftest.py).
test-fast: dev-venv
	$(PY) -m pytest $(PYTEST_PARALLEL) -m "not slow and not browser and not s3" $(PYTEST_ARGS)

bench-transcode: dev-venv
	$(PY) bench/transcode.py $(BENCH_ARGS)

bench-serve: dev-venv
	$(PY) bench/serve.py $(BENCH_ARGS)

# Catalogue pages, search and progress saves on PostgreSQL + Redis (BENCH_DATABASE_URL, BENCH_REDIS_URL).
bench-catalogue: dev-venv
	$(PY) bench/catalogue.py $(BENCH_ARGS)

bench-storage: dev-venv
	$(PY) bench/storage.py $(BENCH_ARGS)

# Playback beacons at 200/s under gunicorn, segment and list latency beside them, the roll-up of a day
# (PostgreSQL + Redis: BENCH_DATABASE_URL, BENCH_REDIS_URL).
bench-bucket-outage: dev-venv
	$(PY) bench/bucket_outage.py $(BENCH_ARGS)

bench-analytics: dev-venv
	$(PY) bench/analytics.py $(BENCH_ARGS)

# Issue 19: time to playable, one film on two workers (s3), chunking's CPU (bench/README-progressive.md;
# PostgreSQL + Redis for the s3 part: BENCH_PG, BENCH_DB_NAME, BENCH_REDIS_URL). Heavy: run it alone.
bench-progressive: dev-venv
	$(PY) bench/progressive.py $(BENCH_ARGS)

# The player's only dependency (hls.js) comes from npm at the version pinned in player/package-lock.json.
player/node_modules/.package-lock.json: player/package.json player/package-lock.json
	cd player && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

# The back office's resumable uploads use tus-js-client (pinned there too), served by the app as a
# static file: copied from node_modules, never committed nor fetched from a CDN.
videoflix/static/vendor/tus.min.js: player/node_modules/.package-lock.json
	mkdir -p $(@D)
	cp player/node_modules/tus-js-client/dist/tus.min.js $@

# The back office's charts use uPlot (pinned there too), served the same way.
videoflix/static/vendor/uPlot.iife.min.js: player/node_modules/.package-lock.json
	mkdir -p $(@D)
	cp player/node_modules/uplot/dist/uPlot.iife.min.js player/node_modules/uplot/dist/uPlot.min.css $(@D)/

player-deps: player/node_modules/.package-lock.json videoflix/static/vendor/tus.min.js videoflix/static/vendor/uPlot.iife.min.js

player: player-deps
	$(PYTHON) -m http.server 5500 --bind 127.0.0.1 --directory player

# Production smoke test, natively: migrate, gunicorn, worker, nginx, SMTP on PostgreSQL + Redis.
smoke: dev-venv
	bash .ci/smoke.sh

# Scale-out smoke test: no shared MEDIA_ROOT, a SeaweedFS bucket, a worker killed mid-transcode.
smoke-s3: dev-venv
	bash .ci/smoke-s3.sh

# Images without a container registry (README "Images from Debian packages"): one debootstrap'ed
# bookworm root, the bases built on it, then the app and nginx images (deploy/images/build.sh; DOCKER,
# EXTRA_CA_BUNDLE, PIP_INDEX_URL, NPM_REGISTRY, DEBIAN_MIRROR, IMAGE_CACHE from the environment).
base-images:
	bash deploy/images/build.sh base

images:
	bash deploy/images/build.sh all

# The compose stack for real: its own dockerd, make images, the stack on the host's network, the user
# flow through nginx (.ci/compose.sh).
smoke-compose: dev-venv
	bash .ci/compose.sh

clean:
	rm -rf $(VENV) instance
