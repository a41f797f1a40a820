# The two fresh-machine commands (README): `make tables` and `make test`.
# Both build the virtual environment first when it is missing or older than its recipe.
VENV      ?= .venv
PYTHON    ?= python3
CORES     ?= 2
STAMP     := $(VENV)/.setup-stamp
SETUP_DEPS := pyproject.toml constraints.txt scripts/setup_env.sh

.PHONY: env test tables clean-env

env: $(STAMP)

$(STAMP): $(SETUP_DEPS)
	PYTHON=$(PYTHON) scripts/setup_env.sh $(VENV)
	touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

clean-env:
	rm -rf $(VENV)
