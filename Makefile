# Baton: `make run` starts the whole stack, `make test` checks everything.
# Needs only python3 (3.11) and make: uv is installed from PyPI into .tools/ when missing.

SHELL := /bin/bash
# Trust the machine's certificate store (corporate proxies, private CAs) as pip does.
export UV_SYSTEM_CERTS ?= 1
# Compile site-packages once at install: with PYTHONDONTWRITEBYTECODE set (CI runners often
# set it) every process the tests start would otherwise compile its imports again (~8 s for
# the agent on a slow machine).
export UV_COMPILE_BYTECODE ?= 1
# A uv installed by `make install` is found by everything below, tests included.
export PATH := $(CURDIR)/.tools/bin:$(PATH)
.DEFAULT_GOAL := help
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PY_SOURCES := shared services devtools tests bench examples
TYPED := shared/src services/ingress/src services/buffer/src services/agent/src \
         services/sender/src services/operator-api/src devtools/src

.PHONY: help install run test lint fmt typecheck pytest migrate bench docs up down clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

install: $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv) ## install uv (if missing) and every dependency from uv.lock
	$(UV) sync --frozen --quiet

run: install ## start PostgreSQL, Redis, the emulators and the five services in the foreground
	$(UV) run --frozen baton-dev run

test: install lint pytest ## lint, type-check, import contracts, then the whole test suite

lint: install ## ruff, ruff format --check, mypy --strict, import-linter contracts
	$(UV) run --frozen ruff check $(PY_SOURCES)
	$(UV) run --frozen ruff format --check $(PY_SOURCES)
	$(UV) run --frozen mypy $(TYPED)
	$(UV) run --frozen lint-imports

fmt: install ## format and auto-fix
	$(UV) run --frozen ruff format $(PY_SOURCES)
	$(UV) run --frozen ruff check --fix $(PY_SOURCES)

pytest: install ## the pytest suite only (unit, integration, e2e)
	$(UV) run --frozen pytest

migrate: install ## apply every service's migrations to DATABASE_URL (or the embedded database)
	$(UV) run --frozen baton-dev run --migrate-only

bench: install ## run the benchmarks (figures go to bench/RESULTS.md)
	$(UV) run --frozen python -m bench

docs: install ## regenerate docs/asyncapi.yaml from the event catalogue
	$(UV) run --frozen python -m baton_shared.events.asyncapi docs/asyncapi.yaml

# Compose would look for .env next to the compose file: point it at the repository's.
COMPOSE := docker compose -f deploy/docker-compose.yml $(if $(wildcard .env),--env-file .env)

up: ## build and start the Docker deployment (deploy/docker-compose.yml, secrets from .env)
	$(COMPOSE) up -d --build --wait

down: ## stop the Docker deployment (volumes are kept: add -v by hand to drop the data)
	$(COMPOSE) down

clean: ## remove local data and caches (embedded PostgreSQL/Redis data included)
	rm -rf .data .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
