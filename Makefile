# image2circuit: `make train` and `make test` work on a fresh machine (they create .venv on first use).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
EXTRA  ?= cpu
# Photo folder (class sub-folders): the shared dev photos when present, else datasets/photos.
PHOTOS ?= $(if $(wildcard ../shared/data/photos),../shared/data/photos,datasets/photos)
EVAL   ?= $(wildcard ../shared/data/handdrawn ../shared/data/cad)
DATA   ?= datasets/default
PER_CLASS ?= 3000
SIZE   ?= 160
RUN    ?= default
# Extra `image2circuit train` options, e.g. make train RUN=no-tta TRAIN_ARGS="--tta 1"
TRAIN_ARGS ?=

export NO_ALBUMENTATIONS_UPDATE := 1
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: dataset train bench bench-realism test clean venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(EXTRA),test]"
	touch $@

venv: $(VENV)/.installed

$(DATA)/manifest.csv: | $(VENV)/.installed
	$(MAKE) dataset

dataset: $(VENV)/.installed
	$(PY) -m trainer.cli generate --out $(DATA) --per-class $(PER_CLASS) --size $(SIZE)
	@if [ -d "$(PHOTOS)" ]; then \
	  $(PY) -m trainer.cli photos import "$(PHOTOS)" --out $(DATA); \
	else \
	  echo "photo domain empty: no photo folder at $(PHOTOS). Put photos in datasets/photos/<class>/ or run"; \
	  echo "  make dataset PHOTOS=/path/to/photos   (or: image2circuit photos fetch --out $(DATA))"; \
	fi

train: $(DATA)/manifest.csv
	$(PY) -m trainer.cli train --data $(DATA) --name $(RUN) --overwrite $(foreach d,$(EVAL),--eval $(d)) $(TRAIN_ARGS)

bench: $(VENV)/.installed
	$(PY) -m trainer.cli bench

# What each realism feature of the generator buys on real drawings (7-15 min on 2 cores).
bench-realism: $(VENV)/.installed
	$(PY) -m trainer.cli bench-realism

test: $(VENV)/.installed
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
	find datasets -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
