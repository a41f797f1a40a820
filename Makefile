# The two fresh-machine commands (README): `make tables` and `make test`; `make lint` checks style and types.
# All build the virtual environment first when it is missing or older than its recipe.
VENV      ?= .venv
PYTHON    ?= python3
CORES     ?= 2
STAMP     := $(VENV)/.setup-stamp
SETUP_DEPS := pyproject.toml constraints.txt scripts/setup_env.sh scripts/pip_sources.py

.PHONY: env test lint tables smoke rehearse clean-env

env: $(STAMP)

$(STAMP): $(SETUP_DEPS)
	PYTHON=$(PYTHON) scripts/setup_env.sh $(VENV)
	touch $(STAMP)

# One pytest-xdist worker per core; the tests of one file stay on one worker (module fixtures run once,
# the SLURM tests share one cluster). `make test CORES=0` runs them in this process. The 15 slowest are listed.
test: $(STAMP)
	$(VENV)/bin/python -m pytest -n $(CORES) --dist loadfile --durations 15 $(PYTEST_ARGS)

# ruff's lint rules and format check over the tree, then mypy on the packages [tool.mypy] in pyproject.toml names
# (the settings of all three live there). CI runs it before the tests.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The main job: every table, figure and the report at the default (mini) scale on the offline stand-ins.
# Each job runs single-threaded, CORES of them at a time (OpenMP threads of oversubscribed jobs spin).
tables: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES) all $(SNAKEMAKE_ARGS)

# The same plumbing at smoke scale (its time on 2 cores: README.md's timings table).
smoke: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES) all --configfile config/smoke.yaml $(SNAKEMAKE_ARGS)

# Before GPU-days are spent: every paper job at the paper's sizes, on synthetic data of the real datasets'
# sizes and formats (written once into data/rehearsal, ~3.4 GB), a few updates each, killed and resumed;
# its report is results/rehearsal/rehearsal.md (docs/rehearsal.md).
REHEARSAL_DATA ?= data/rehearsal
rehearse: $(STAMP)
	$(VENV)/bin/mebqat data synthesize --root $(REHEARSAL_DATA)
	$(VENV)/bin/snakemake --cores $(CORES) rehearsal --configfile config/rehearsal.yaml \
		--config data_root=$(REHEARSAL_DATA) $(SNAKEMAKE_ARGS)

clean-env:
	rm -rf $(VENV)
