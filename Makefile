# sio_teach — the commands of the README.
#   make test   set up .venv and node_modules, then run every test (pytest + nbval on the notebooks)
#   make lab    set up, then JupyterLab on notebooks/
#   make demo   set up, then a server and a client on 127.0.0.1 with the live packet trace
#   make install       set up only;   make system-deps   optional system packages (needs root)
#   make bench  set up, then the benchmark against python-socketio and Node (a few minutes)
#   make soak   set up, then the full soak and the 2,000-client heartbeat hold (a few minutes)

VENV    := .venv
PY      := $(VENV)/bin/python
UV      := $(VENV)/bin/uv
PYTHON3 ?= python3
NBVAL   := --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg

.PHONY: install test lab demo bench soak lint system-deps clean

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON3) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv
	$(UV) pip install --python $(PY) --quiet --compile-bytecode -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: install
	$(PY) -m ruff check sio_teach tests
	$(PY) -m pytest tests
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then $(PY) -m pytest $(NBVAL) notebooks; fi

lab: install
	$(VENV)/bin/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)

demo: install
	$(PY) -m sio_teach.examples.chat --demo

# benchmarks/README.md; `$(PY) -m benchmarks.run --quick` is a smoke run, `--help` for options
bench: install
	$(PY) -m benchmarks.run
	$(PY) -m benchmarks.plot

# the full forms of what `make test` runs short: the soak, and 2,000 clients on a fast heartbeat
soak: install
	$(PY) -m benchmarks.soak
	$(PY) -m benchmarks.heartbeat_hold --servers ours --clients 2000 --hold 20

lint: install
	$(PY) -m ruff check sio_teach tests
	$(PY) -m ruff format --check sio_teach tests

# Optional system packages for the browser, load-balancer and sharded Pub/Sub (Redis 7) tests
# (Debian, as root).
system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium nginx redis-server >/dev/null; } \
	    || echo "system-deps: apt-get failed; browser, nginx and Redis 7 tests will say what is missing"; \
	else echo "system-deps: needs root and apt-get; skipping (browser, nginx and Redis 7 tests will skip)"; fi

clean:
	rm -rf $(VENV) node_modules .pytest_cache
