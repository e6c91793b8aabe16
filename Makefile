# gpunet: the two commands are `make demo` and `make test`; both install what is missing.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed-stamp
ANVIL := node_modules/.bin/anvil
# Headless Chromium and its driver, for the explorer's browser test (Debian packages).
CHROMEDRIVER := /usr/bin/chromedriver
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)
# ape-vyper finds the pinned vyper and ape-foundry finds anvil on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
# Keep ape's data (compiler caches, accounts) inside the checkout's ignored folders.
export APE_DATA_FOLDER ?= $(CURDIR)/.cache/ape
# Unit tests and fuzz: how many hypothesis examples (CI keeps it short; `make fuzz` goes long).
FUZZ_EXAMPLES ?= 40
# The suite runs in TEST_WORKERS pytest-xdist processes, a test file per worker at a time (module
# fixtures are built once), the tests that run whole networks of processes one after another on
# one worker (tests/conftest.py, HEAVY_MODULES), started first. Much of the suite waits on anvil
# blocks and child processes; two workers keep ~1.8 of 2 cores busy and run it in about 14 minutes
# on a 2-core machine (docs/LOAD.md "The suite's time"). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2

.PHONY: install test unit fuzz demo bench load faults figures seal-bench explorer explorer-bench screenshots clean lint

install: $(STAMP) $(ANVIL) $(CHROMEDRIVER)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -r requirements.lock
	$(VENV)/bin/pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	@touch $@

$(ANVIL): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

$(CHROMEDRIVER):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver

test: install
	ape compile
	ape test tests -q -p no:cacheprovider --ignore=tests/fuzz --durations=20 -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(VENV)/bin/python -m pytest tests/fuzz -q -p no:cacheprovider -p no:ape_test

fuzz: install
	FUZZ_EXAMPLES=2000 $(VENV)/bin/python -m pytest tests/fuzz -q -p no:cacheprovider -p no:ape_test

demo: install
	$(VENV)/bin/python -m scripts.demo

bench: install
	$(VENV)/bin/python -m scripts.bench

# The network under 1,500 jobs a minute for 3 minutes -> build/load/summary.json (~6 min; docs/LOAD.md).
load: install
	ape compile
	$(VENV)/bin/python -m scripts.load

# Workers, a client and an operator killed mid-job, then restarted -> build/faults/summary.json (~5 min).
faults: install
	ape compile
	$(VENV)/bin/python -m scripts.faults

# Sealing job data: ms per MiB and per job, and sealed vs plaintext jobs end to end -> build/bench/sealing.json (~1 min).
seal-bench: install
	ape compile
	$(VENV)/bin/python -m scripts.seal_bench

# Hardware decision rule error rates under 0/50/100% background load -> build/figures/hardware.json (~10 min).
figures: install
	$(VENV)/bin/python -m scripts.figures

# The web explorer over the last `make demo` run's chain (http://127.0.0.1:8700; Ctrl-C stops it).
explorer: install
	$(VENV)/bin/python -m scripts.explorer_demo

# Explorer pages with 10,000 jobs indexed: ms per page -> build/bench/explorer.json (~10 min).
explorer-bench: install
	ape compile
	$(VENV)/bin/python -m scripts.explorer_bench

# The README's explorer screenshots (docs/explorer/*.png), from the demo and browser test (~4 min).
screenshots: install
	ape compile
	GPUNET_SCREENSHOTS=$(CURDIR)/docs/explorer ape test tests/test_demo_anvil.py -q -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check offchain scripts tests

clean:
	rm -rf .build build .cache
