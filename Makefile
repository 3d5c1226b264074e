# `make demo` and `make test` need nothing but Python 3.11+: each creates .venv and
# installs what it needs (again only when pyproject.toml changed).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench bundle bundle-demo wheels man clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "cockpit needs Python 3.11 or newer on PATH" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	touch $@ $(VENV)/.installed-base

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-base $(VENV)/.installed-demo

# The flagship runbook against the local sandbox: the TUI in a terminal, else headless.
# Options go in ARGS: make demo ARGS="--drill bad-release"
demo: $(VENV)/.installed-demo
	@if [ -t 0 ] && [ -t 2 ]; then $(BIN)/cockpit demo $(ARGS); \
	else $(BIN)/cockpit demo --headless --yes $(ARGS); fi

test: $(VENV)/.installed-test
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	@# The suite expects a UTF-8 terminal, whatever the machine's locale; the bastion
	@# tests set LANG=C for the cockpits they start.
	env -u LC_ALL -u LC_CTYPE LANG=C.UTF-8 $(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: $(VENV)/.installed-test bundle
	$(BIN)/python -m bench.engine
	$(BIN)/python -m bench.tui
	$(BIN)/python -m bench.data
	$(BIN)/python -m bench.metrics
	$(BIN)/python -m bench.importer
	$(BIN)/python -m bench.watch
	$(BIN)/python -m bench.replay
	$(BIN)/python -m bench.platform
	$(BIN)/python -m bench.hostile
	$(BIN)/python -m bench.alerts
	$(BIN)/python -m bench.prometheus
	$(BIN)/python -m bench.corpus
	$(BIN)/python -m bench.bundle $(BUNDLE)

# One executable file to copy to a bastion: cockpit and every runtime dependency, built
# offline from this venv. It runs on any CPython of this minor version (3.11.0 and up for
# a 3.11 build: async-timeout, which redis needs below 3.11.3, is put in by name; the
# compiled wheels are this Python's). Its first run unpacks it into a venv under
# ~/.cache/pex (PEX_ROOT) in a few seconds; later runs start from /bin/sh straight into
# that venv's Python (--sh-boot), as fast as an installed cockpit, whichever 3.11 it is:
# the interpreter constraint keys that venv by the constraint, not by the builder's Python
# (which is why the bundle is made in two steps: pex takes no constraint together with
# --venv-repository, its check failing on every py2.py3 wheel such as six's).
BUNDLE ?= dist/cockpit.pex
BUNDLE_DEMO ?= dist/cockpit-demo.pex
BUILD := build/bundle
MINOR = $(shell $(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
bundle: $(VENV)/.installed-test
	$(call pex,$(BUNDLE),)

# The same with the demo's embedded servers (cockpit demo, cockpit sandbox).
bundle-demo: $(VENV)/.installed-test
	$(call pex,$(BUNDLE_DEMO),$(shell $(BIN)/python -c 'import shlex, tomllib; \
		print(*map(shlex.quote, tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["demo"]))'))

# 1. the wheels of cockpit and its dependencies as this venv holds them (pex resolves from
# the venv: no index); 2. the bundle from exactly those wheels. Its venv gets copies (hard
# links) of them: with symlinks, share/ was one wheel's alone (sympy's in bundle-demo), and
# cockpit's flagship runbook (share/cockpit) went missing.
define pex
	@# build/lib is setuptools' own: a module it holds from an earlier layout would go in.
	rm -rf $(BUILD) build/lib
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation -w $(BUILD)/project .
	$(BIN)/pex --venv-repository $(VENV) --project $(BUILD)/project/cockpit-*.whl \
		async-timeout $(2) --include-tools --layout loose --output-file $(BUILD)/resolved
	PEX_TOOLS=1 $(BIN)/python $(BUILD)/resolved repository extract --find-links $(BUILD)/wheels
	@mkdir -p $(dir $(1))
	$(BIN)/pex --no-pypi --find-links $(BUILD)/wheels $(BUILD)/wheels/*.whl \
		--interpreter-constraint "CPython==$(MINOR).*" --entry-point cockpit.cli:main \
		--venv --sh-boot --venv-site-packages-copies --output-file $(1)
	@ls -l $(1)
endef

# The bundle's wheels, for pip or pipx on a machine with no index (see README, On a bastion):
# pipx install --pip-args="--no-index --find-links=wheels" wheels/cockpit-*.whl
# (pipx first upgrades pip in its shared venv: this venv's pip goes in too.)
WHEELS ?= dist/wheels
wheels: bundle
	rm -rf $(WHEELS) && mkdir -p $(WHEELS) && cp $(BUILD)/wheels/*.whl $(WHEELS)/
	$(BIN)/pex --venv-repository $(VENV) pip --include-tools --layout loose \
		--output-file $(BUILD)/pip
	PEX_TOOLS=1 $(BIN)/python $(BUILD)/pip repository extract --find-links $(WHEELS)

# cockpit(1) from the parser that makes --help: man -l cockpit.1
man: $(VENV)/.installed-base
	$(BIN)/python -m cockpit.manpage > cockpit.1

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build dist cockpit.1
