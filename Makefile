# Fidelio — every command a newcomer needs. `make demo` and `make test` set everything up.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
export UV_PYTHON_DOWNLOADS := never

.PHONY: help install browser demo test test-fast synth bundle lint bench models deploy schemas clean

help:
	@echo "make demo     run the main job end to end on a local AWS stand-in (moto)"
	@echo "make test     run every test (unit, integration on moto, infrastructure)"
	@echo "make synth    synthesize the CDK app (offline) into cdk.out/"
	@echo "make lint     ruff + mypy + cfn-lint"
	@echo "make bench    run the benchmarks (results in benchmarks/results/)"
	@echo "make models   rebuild the ONNX models in model_artifacts/ from real data"
	@echo "make deploy   cdk deploy to your AWS account (needs credentials)"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --disable-pip-version-check -q uv==$(UV_VERSION)

$(STAMP): $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --all-extras --python $(PYTHON) -q
	@touch $(STAMP)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

install: $(STAMP)

# The preference-center test drives Debian's chromium through chromedriver (never a downloaded
# browser). Installed here when missing and apt-get is available (CI runs as root on Debian);
# without it the test fails, unless FIDELIO_SKIP_BROWSER=1 skips it on purpose.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		if command -v apt-get >/dev/null 2>&1; then \
			SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
			echo "installing chromium + chromium-driver (apt-get) for the browser test"; \
			$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
			$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
				chromium chromium-driver >/dev/null; \
		else \
			echo "chromium not found and no apt-get: the browser test will fail (FIDELIO_SKIP_BROWSER=1 skips it)"; \
		fi; \
	fi

demo: install
	$(VENV)/bin/fidelio demo --out out/demo

test: install browser
	$(PY) -m pytest -q -n 2 --dist loadfile

test-fast: install
	$(PY) -m pytest -q -m "not slow and not infrastructure"

schemas: install
	$(VENV)/bin/fidelio schemas write

bundle: install
	$(PY) -m infra.bundle --out build/lambda

synth: bundle
	$(PY) infra/app.py

lint: install synth
	$(VENV)/bin/ruff check functions fidelio infra tests benchmarks
	$(VENV)/bin/mypy functions infra
	$(VENV)/bin/cfn-lint --regions eu-west-1 --ignore-checks W3005 -- cdk.out/*.template.json

bench: install
	@mkdir -p benchmarks/results
	@set -e; for script in benchmarks/[!_]*.py; do \
		name=$$(basename $$script .py); \
		echo "== $$name"; \
		$(PY) $$script --json benchmarks/results/$$name.json; \
	done

models: install
	$(PY) -m fidelio.models.offers --split-date 2017-08-01 --out model_artifacts/offers
	$(PY) -m fidelio.models.churn --out model_artifacts/churn

deploy: bundle node_modules/.package-lock.json
	npx --no-install cdk deploy --require-approval broadening

clean:
	rm -rf $(VENV) $(TOOLS) build cdk.out .pytest_cache .mypy_cache .ruff_cache
