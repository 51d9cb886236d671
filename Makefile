# The two commands of the README. Both create .venv and install asl (editable, with dev extras) on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: train test tb lint clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m asl.envcheck
	touch $(STAMP)

## make train [ARGS="model=resnet18 trainer.max_epochs=20"]: train on the embedded synthetic set (or ARGS)
train: $(STAMP)
	NO_ALBUMENTATIONS_UPDATE=1 $(BIN)/asl-train $(ARGS)

## make test: the import contracts (layers), then the whole test suite (what CI runs), one test file per core
## (at most 4 workers; a file's tests share one worker, so its trained-once fixtures are trained once)
test: $(STAMP)
	$(BIN)/lint-imports
	NO_ALBUMENTATIONS_UPDATE=1 $(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile $(ARGS)

## make tb [ARGS="--port 6007"]: TensorBoard over every run in outputs/ and multirun/ (http://localhost:6006)
tb: $(STAMP)
	PYTHONWARNINGS='ignore:pkg_resources is deprecated' $(BIN)/tensorboard --logdir_spec outputs:outputs,multirun:multirun $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check asl tests experiments tools
	$(BIN)/lint-imports

clean-venv:
	rm -rf $(VENV)
