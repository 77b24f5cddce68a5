# Every target sets up what it needs: a virtualenv in .venv with the project
# and its test/dev dependencies, reinstalled when pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test test-tools lint unit e2e bench demo crds readme chart-schema clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check operator tests benchmarks e2e
	$(BIN)/ruff format --check operator tests benchmarks e2e
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -m "not e2e" -q

## make test: lint, type checks, layer contracts and the unit/integration tests
test: lint unit

## make test-tools: helm and headless Chromium, so `make test` skips nothing (CI has both)
test-tools:
	e2e/peers/build-all helm
	tests/browser/install-chromium

## make e2e: build/start the real peer servers (cached) and run the e2e suite
e2e: $(STAMP)
	e2e/run

## make bench: every benchmark, one table of ratios against the peers
bench: $(STAMP)
	$(BIN)/python -m benchmarks

## make demo: the embedded demo (gateway + services + policy + report)
demo: $(STAMP)
	$(BIN)/gatetrace demo

crds: $(STAMP)
	$(BIN)/gatetrace crds > crds/tracingpolicies.gatetrace.dev.yaml
	cp crds/tracingpolicies.gatetrace.dev.yaml charts/gatetrace/crds/

## make readme: regenerate the README's TracingPolicy reference from the model
readme: $(STAMP)
	$(BIN)/python -m gatetrace.policy.reference README.md

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

## make chart-schema: regenerate the chart's values.schema.json routes from the gateway model
chart-schema: $(STAMP)
	$(BIN)/python -m gatetrace.gateway.values_schema charts/gatetrace/values.schema.json
