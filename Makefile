# The two commands a newcomer needs: `make up` runs the platform, `make test` tests it.
# Both install what is missing first (virtualenv, system packages, TimescaleDB).

VENV := .venv
STADSPULS := $(VENV)/bin/stadspuls

.PHONY: up test check setup venv down status clean lock

up: setup
	$(STADSPULS) up --skip-setup

test: setup
	$(VENV)/bin/pytest

check: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

setup: venv
	$(STADSPULS) setup

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml deploy/venv.sh
	VENV=$(VENV) sh deploy/venv.sh
	touch $@

down:
	$(STADSPULS) down

status:
	$(STADSPULS) status

clean: down
	rm -rf .stadspuls

# Resolve pyproject.toml's ranges afresh to the newest versions they allow, with hashes
# (`make lock UPGRADE=` keeps the pins that still fit). Run `make test` after it: it
# reinstalls from the new lock.
UPGRADE := --upgrade
lock: venv
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile $(UPGRADE) --quiet \
	    --extra dev --generate-hashes --allow-unsafe --all-build-deps --strip-extras \
	    --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
