# The book's two commands:  make book  |  make test
# Both create the virtual environment .venv on first use (needs Python >= 3.10 and pip's registry).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Datasets: $OOD_DATA_ROOT if set, else ../shared/data when it exists (offline machines),
# else the package's default (a user cache dir, downloaded on first use).
ifeq ($(strip $(OOD_DATA_ROOT)),)
  ifneq ($(wildcard ../shared/data/MNIST),)
    export OOD_DATA_ROOT := $(abspath ../shared/data)
  endif
endif

# Each chapter saves its key results here; the book's results page reads them back.
export OOD_RESULTS_DIR ?= $(abspath _build/results)

.PHONY: env book test clean
env: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book,test]"
	touch $(STAMP)

## make book: execute every chapter and write the website to _build/html (warnings are errors)
book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "open _build/html/index.html"

## make test: the whole test suite, unit tests and every notebook in _toc.yml
test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf _build .pytest_cache
