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
lint: lint-python lint-docker lint-templates ## ruff, mypy, hadolint, cfn-lint, checkov, parliament (ops package too)

.PHONY: lint-python
lint-python: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

.PHONY: lint-docker
lint-docker: $(STAMP)
	$(BIN)/hadolint site/Dockerfile

.PHONY: lint-templates
lint-templates: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/spotops package --offline --stage dev --out $(OPS_LINT_DIR) > /dev/null
	$(BIN)/cfn-lint --append-rules infra/cfn_lint_rules -- $(TEMPLATES) \
		$(OPS_LINT_DIR)/sam.yaml $(OPS_LINT_DIR)/ops.json
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
		$(foreach t,$(TEMPLATES) $(OPS_LINT_DIR)/ops.json,-f $(t))
	$(BIN)/python -m infra.iam_lint --min-severity LOW $(TEMPLATES) $(OPS_LINT_DIR)/ops.json

.PHONY: test
test: setup lint ## Lint, then run the whole test suite
	$(BIN)/pytest

# ---- the whole system on this machine ----------------------------------------------------

.PHONY: demo
demo: $(STAMP) ## The whole system against the local emulator: deploy, push, duplicate, chaos (no AWS account)
	$(BIN)/python -m spotops.demo

# ---- the site ------------------------------------------------------------------------

.PHONY: run
run: $(STAMP) ## Serve the site on http://127.0.0.1:8080
	cd site && HOST=127.0.0.1 PORT=$${PORT:-8080} ../$(BIN)/python -m website

.PHONY: bench
bench: $(STAMP) ## Measure start time, memory and throughput (loopback only)
	$(BIN)/python -m benchmarks

# ---- AWS, through the spotops command line ------------------------------------------
# STAGE picks config/$(STAGE).json. Against the emulator: AWS_ENDPOINT_URL=http://127.0.0.1:4566
STAGE ?= dev

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

.PHONY: status
status: $(STAMP) ## Stacks, service, deployment, image and alarms of STAGE
	$(BIN)/spotops status --stage $(STAGE)

.PHONY: cost
cost: $(STAMP) ## Monthly cost estimate of STAGE from the price table
	$(BIN)/spotops cost --stage $(STAGE)

.PHONY: emulator
emulator: $(STAMP) ## Run the local AWS emulator (moto) on 127.0.0.1:4566 in the foreground
	$(BIN)/moto_server -H 127.0.0.1 -p 4566

.PHONY: clean
clean: ## Remove the virtual environments and caches
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts build
