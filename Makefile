# inceptdsl developer tasks. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= out

.PHONY: install browser demo test lint gallery docs bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

# Headless Chromium and its driver for the browser tests (tests/test_page_browser.py), from
# Debian's packages; nothing to do when both are there. As root directly, else via sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	else $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install \
	  -y -qq chromium chromium-driver; fi

# The main job: compile a shipped spec, print its cost table, render its diagram.
demo: install
	mkdir -p $(OUT)
	$(VENV)/bin/inceptdsl compile inception_v3 --backend torch -o $(OUT)/inception_v3.py
	$(VENV)/bin/inceptdsl summary inception_v3
	$(VENV)/bin/inceptdsl render inception_v3 --depth 1 -o $(OUT)/inception_v3.svg
	@echo "wrote $(OUT)/inception_v3.py and $(OUT)/inception_v3.svg"

test: install browser
	PYTHONDONTWRITEBYTECODE=1 $(PY) -m pytest -n 2 -q -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check inceptdsl backends tests benchmarks examples

gallery: install
	$(PY) -m inceptdsl.diagram --gallery docs/gallery

bench: install browser
	$(PY) benchmarks/bench_analysis.py
	$(PY) benchmarks/bench_inference.py
	$(PY) benchmarks/bench_page.py
	$(PY) benchmarks/bench_deploy.py

clean:
	rm -rf $(VENV) $(OUT) build dist *.egg-info
