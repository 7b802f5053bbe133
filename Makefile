# The two commands a newcomer needs: `make up` runs the platform, `make test` tests it.
# Both install what is missing first (virtualenv, system packages, TimescaleDB).

VENV := .venv
STADSPULS := $(VENV)/bin/stadspuls

.PHONY: up test check setup venv down status clean

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

$(VENV)/.installed: pyproject.toml deploy/venv.sh
	VENV=$(VENV) sh deploy/venv.sh
	touch $@

down:
	$(STADSPULS) down

status:
	$(STADSPULS) status

clean: down
	rm -rf .stadspuls
