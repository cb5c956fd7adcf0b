# Entry points people type. Every target that needs the virtual environment makes it first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-stamp
# ops.yaml is a merge template: only the package built from it is a whole template.
TEMPLATES := $(filter-out %/ops.yaml,$(wildcard infra/cloudformation/*.yaml))
OPS_LINT_DIR := build/ops-lint

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z][a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

# ---- setup ---------------------------------------------------------------------------

.PHONY: setup
setup: $(STAMP) ## Create .venv with the pinned development requirements (no-op when done)

$(STAMP): requirements/dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# checkov pins libraries that clash with the dev tools, so it lives in its own venv.
$(CHECKOV_STAMP): requirements/checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/checkov.txt
	touch $@

# ---- checks --------------------------------------------------------------------------

.PHONY: lint
lint: lint-python lint-docker lint-runbooks lint-templates lint-security ## ruff, mypy, hadolint, runbook check, cfn-lint, checkov, parliament, AWS's limits (ops package too, every profile), secret and workflow scans

.PHONY: lint-python
lint-python: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

.PHONY: lint-docker
lint-docker: $(STAMP)
	$(BIN)/hadolint site/Dockerfile

# Every alarm links a runbook that exists, every runbook is linked by an alarm or an action,
# no relative link in a runbook is broken, every spotops command and option a runbook uses
# exists, no runbook sets STAGE itself or holds a TODO (infra/runbook_check.py).
.PHONY: lint-runbooks
lint-runbooks: $(STAMP)
	$(BIN)/python -m infra.runbook_check

.PHONY: lint-templates
lint-templates: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/spotops package --offline --stage dev --out $(OPS_LINT_DIR) > /dev/null
	$(BIN)/cfn-lint --append-rules infra/cfn_lint_rules -- $(TEMPLATES) \
		$(OPS_LINT_DIR)/sam.yaml $(OPS_LINT_DIR)/ops.json
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
		$(foreach t,$(TEMPLATES) $(OPS_LINT_DIR)/ops.json,-f $(t))
	$(BIN)/python -m infra.iam_lint --min-severity LOW $(TEMPLATES) $(OPS_LINT_DIR)/ops.json
	$(BIN)/python -m infra.limits_check

# Secrets and identifiers (infra/secret_scan.py: detect-secrets against .secrets.baseline,
# no account id, access key or webhook URL in templates, workflows or config), then the
# workflows: zizmor's security audits (offline) and GitHub's workflow schema.
.PHONY: lint-security
lint-security: $(STAMP)
	$(BIN)/python -m infra.secret_scan
	$(BIN)/zizmor --offline --quiet .github/workflows
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/mypy .github/scripts/delivery.py

.PHONY: test
# TEST_WORKERS=N runs N pytest workers (0: one process). Whole files go to one worker
# (--dist loadfile), so a module's server, built package or site starts once, not per worker.
TEST_WORKERS ?= 2

test: setup lint ## Lint, then run the whole test suite (TEST_WORKERS in parallel, default 2)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

# ---- the whole system on this machine ----------------------------------------------------

.PHONY: demo
demo: $(STAMP) ## The whole system against the local emulator: deploy, push, duplicate, chaos (no AWS account)
	$(BIN)/python -m spotops.local.demo

# ---- the site ------------------------------------------------------------------------

# Where `make run` listens: HOST=0.0.0.0 make run serves the LAN, PORT=8081 another port.
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run
# The port is checked before "Serving" is printed: a taken one fails naming a free one.
run: $(STAMP) ## Serve the site and print its URL (HOST, PORT; default 127.0.0.1:8080)
	@cd site && HOST=$(HOST) PORT=$(PORT) ../$(BIN)/python -m website --check-port
	@echo "Serving the site on http://$(HOST):$(PORT)/ (Ctrl-C stops it)"
	cd site && HOST=$(HOST) PORT=$(PORT) ../$(BIN)/python -m website

# Loopback only. Installs wrk from Debian when it is missing (and says loudly when it cannot).
.PHONY: bench
bench: $(STAMP) ## Site vs bare Sanic (CPU/request, req/s, p50/p99, RSS, SIGTERM), Lambda cold/warm, sizes
	$(BIN)/python -m benchmarks $(BENCH_FLAGS)

# Mutation testing of the decision modules, each against its own unit tests (issue 28). Only
# the modules whose source or tests changed since the last run, unless ALL=1; fails when one
# scores under MIN_SCORE percent (90). Survivors and their ids: build/mutants/report.md.
.PHONY: mutants
mutants: $(STAMP) ## Mutation score of each decision module (ALL=1: not only changed ones; MIN_SCORE, 90)
	$(BIN)/python tools/mutants.py --threshold $(or $(MIN_SCORE),90) $(if $(ALL),--all)

# URL defaults to the local site (started for the run if nothing answers there). A URL that is
# neither this machine nor STAGE's recorded SiteUrl is loaded only after you confirm (YES=1).
.PHONY: loadtest
loadtest: $(STAMP) ## Locust, headless: URL, USERS (10), DURATION (30s), MAX_ERROR_RATE (%), MAX_P99_MS
	$(BIN)/python -m loadtest --url "$(or $(URL),http://127.0.0.1:8080)" \
		--users $(or $(USERS),10) --duration $(or $(DURATION),30s) --stage $(STAGE) \
		$(if $(SPAWN_RATE),--spawn-rate $(SPAWN_RATE)) \
		$(if $(MAX_ERROR_RATE),--max-error-rate $(MAX_ERROR_RATE)) \
		$(if $(MAX_P99_MS),--max-p99-ms $(MAX_P99_MS)) $(if $(YES),--yes)

# ---- the site image --------------------------------------------------------------------
# IMAGE names it (default spotops-site:<commit>), BASE_IMAGE replaces the Dockerfile's base,
# IMAGE_ENGINE=docker|buildah skips the choice, IMAGE_FLAGS adds options of
# `python -m spotops.image.build` (e.g. --ca-bundle=/etc/ssl/certs/ca-certificates.crt).
IMAGE ?=
BASE_IMAGE ?=
IMAGE_ENGINE ?= auto
IMAGE_FLAGS ?=

.PHONY: image
image: $(STAMP) ## Build the site image: Docker if its engine answers, else buildah (vfs, chroot)
	$(BIN)/python -m spotops.image.build --engine=$(IMAGE_ENGINE) \
		$(if $(IMAGE),--tag=$(IMAGE)) $(if $(BASE_IMAGE),--base-image=$(BASE_IMAGE)) $(IMAGE_FLAGS)

.PHONY: test-image
test-image: $(STAMP) ## Build the image on a local Debian base, run it, probe it (root, ~3 min)
	$(BIN)/pytest -m image tests/e2e/image

# ---- AWS, through the spotops command line ------------------------------------------
# STAGE picks config/$(STAGE).json (`make init` writes one). For the local emulator, run
# `make emulator`, then export AWS_ENDPOINT_URL=http://127.0.0.1:4566 and any fake keys.
STAGE ?= dev
PROFILE ?= dev

.PHONY: deploy
deploy: $(STAMP) ## Deploy network, site and ops stacks of STAGE by change set; site URL last
	$(BIN)/spotops deploy --stage $(STAGE)

.PHONY: package
package: $(STAMP) ## Build the ops toolkit's package of STAGE into .spotops/package/STAGE
	$(BIN)/spotops package --stage $(STAGE)

.PHONY: push
push: $(STAMP) ## Build the site image, tag it with the git commit, push it to ECR
	$(BIN)/spotops push --stage $(STAGE)

.PHONY: destroy
destroy: $(STAMP) ## Delete the stacks of STAGE in reverse order (asks first)
	$(BIN)/spotops destroy --stage $(STAGE)

.PHONY: doctor
doctor: $(STAMP) ## Read-only checks of the account and STAGE before a deploy (quotas, stacks, layer, webhook)
	$(BIN)/spotops doctor --stage $(STAGE)

.PHONY: verify
verify: $(STAMP) ## After a deploy, prove every flow of STAGE on the account, changing nothing users see
	$(BIN)/spotops verify --stage $(STAGE)

.PHONY: status
status: $(STAMP) ## Stacks, tasks (Spot or on-demand, target health), CPU, memory, alarms, ops toolkit of STAGE
	$(BIN)/spotops status --stage $(STAGE)

.PHONY: logs
logs: $(STAMP) ## The site's logs of STAGE, last 10 minutes, then new ones until Ctrl-C
	$(BIN)/spotops logs --stage $(STAGE) --follow

.PHONY: init
init: $(STAMP) ## Write config/STAGE.json from PROFILE (dev, seed or prod), asking the main choices
	$(BIN)/spotops init $(STAGE) --from-profile $(PROFILE)

.PHONY: cost
cost: $(STAMP) ## Monthly cost estimate of STAGE from the price table
	$(BIN)/spotops cost --stage $(STAGE)

.PHONY: emulator
emulator: $(STAMP) ## Run the local AWS emulator (moto) on 127.0.0.1:4566 in the foreground
	$(BIN)/moto_server -H 127.0.0.1 -p 4566

.PHONY: clean
clean: ## Remove the virtual environments and caches
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts build
