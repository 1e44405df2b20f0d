# The two commands of the README: `make demo` and `make test`. Each sets up what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_PHOTOS ?= demo-photos
DEMO_OUT ?= demo-out
# checkov pins old boto3/packaging releases, so it lives in a tool venv of its own.
TOOLS ?= .venv-tools
CHECKOV_VERSION ?= 3.3.30

.PHONY: demo notebook test lint typecheck unit setup clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch is installed first and pinned: that version is the CPU build; a bare `torch`
# requirement would pull several GB of CUDA libraries.
# The demo installs what it runs (2.2 GB, most of it PySpark and torch); the rest (the CDK
# with its Node.js, the test tools, Jupyter) comes with `make test`, `setup` or `notebook`.
# One stamp per install, so a venv made by `make demo` still gets the rest for `make test`.
$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[local,demo]'
	touch $@

$(VENV)/.installed-notebook: $(VENV)/.installed-demo
	$(BIN)/pip install --quiet -e '.[local,demo,notebook]'
	touch $@

$(VENV)/.installed-all: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[local,demo,notebook,cdk,dev]'
	touch $@ $(VENV)/.installed-demo $(VENV)/.installed-notebook

setup: $(VENV)/.installed-all

$(TOOLS)/bin/checkov:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)

demo: $(VENV)/.installed-demo
	PATH="$(CURDIR)/$(BIN):$$PATH" imgpipe samples $(DEMO_PHOTOS)
	PATH="$(CURDIR)/$(BIN):$$PATH" imgpipe run $(DEMO_PHOTOS) --out $(DEMO_OUT)

# The demo's run in Jupyter Notebook (installed on first use, about 220 MB more).
notebook: $(VENV)/.installed-notebook
	IMGPIPE_OUT=$(abspath $(DEMO_OUT)) $(BIN)/jupyter notebook analysis/explore.ipynb

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/actionlint
	$(BIN)/zizmor --offline --persona=pedantic .github/workflows

typecheck: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/mypy imgpipe spark_jobs analysis lambda_src stacks app.py benchmarks

unit: setup $(TOOLS)/bin/checkov
	CHECKOV="$(CURDIR)/$(TOOLS)/bin/checkov" PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -q

test: lint typecheck unit

clean:
	rm -rf $(VENV) $(TOOLS) $(DEMO_PHOTOS) $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache
