# The two commands of the README: `make run` and `make test`. Both bootstrap first (idempotent).
SHELL := /bin/bash
BIN := .venv/bin
PROFILE ?= embedded

.PHONY: run test bootstrap unit services down clean

bootstrap:
	@bash scripts/bootstrap.sh

run: bootstrap
	@$(BIN)/hotpath up --profile $(PROFILE)

# The whole suite against real servers: both profiles' services are started (idempotently).
test: bootstrap
	@$(BIN)/hotpath services up --profile full
	@$(BIN)/python -m pytest

# Fast tests only: no servers, no Ray.
unit: bootstrap
	@$(BIN)/python -m pytest -m "not services and not ray"

services: bootstrap
	@$(BIN)/hotpath services up --profile $(PROFILE)

down:
	@$(BIN)/hotpath services down

clean: down
	rm -rf .hotpath
