# Everything a fresh machine needs: `make run` and `make test` create .venv and install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run once check test lint clean bench soak lock

# Dependencies come from requirements.lock (exact versions, hashes checked): every machine
# runs what CI ran. `make lock` rewrites it after a change to pyproject.toml's dependencies.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Keeps the versions already locked unless pyproject.toml asks otherwise (UPGRADE=1: newest).
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 $${UPGRADE:+--upgrade} -o requirements.lock

# The daemon on the shipped config: scheduled pulls, the feeds served on its `listen`.
run: $(STAMP)
	@$(BIN)/aggregator --config config.toml run

once: $(STAMP)
	@$(BIN)/aggregator --config config.toml run --once

check: $(STAMP)
	@$(BIN)/aggregator --config config.toml check

lint: $(STAMP)
	$(BIN)/ruff check aggregator tests bench scripts
	$(BIN)/ruff format --check aggregator tests bench scripts
	$(BIN)/mypy

# System tools some tests use (newsboat, Debian's package) are never installed here: a test
# whose tool is missing is skipped and says how to install it; .ci/run installs them for CI.
# The figure of covered lines (in the CLI and daemon subprocesses too) ends the output, and
# under the floor in pyproject.toml the target fails.
test: $(STAMP) lint
	@rm -rf .coverage && mkdir .coverage
	$(BIN)/coverage run -m pytest -q -rs
	@$(BIN)/coverage combine -q && $(BIN)/coverage report

# The crash and fuzz tests of `make test`, longer and randomized (about 7 minutes):
# SIGKILLs at random instants of passes and of the daemon, then the invariants checked.
soak: $(STAMP)
	PASS_FUZZ_EXAMPLES=$${EXAMPLES:-60} PASS_FUZZ_RANDOM=1 $(BIN)/python -m pytest -q \
	  tests/test_reliability.py -k fuzzed -p no:cacheprovider
	$(BIN)/python tests/soak.py --rounds $${ROUNDS:-100} $${SEED:+--seed $$SEED}

BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# A full pass and a pass of 304s against lemon24/reader on 200 local feeds x 50 items.
# PROFILE=file.txt adds a pyinstrument profile of the full pass (its times then run slow);
# PROFILE_304=file.txt one of the first pass of 304s, the whole process, start to exit.
bench: $(BENCH_STAMP)
	$(BIN)/python bench/pass_bench.py --feeds $${FEEDS:-200} --items $${ITEMS:-50} \
	  $${PROFILE:+--profile $$PROFILE} $${PROFILE_304:+--profile-304 $$PROFILE_304}

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
