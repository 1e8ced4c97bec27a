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

# The browser runtime of chapter 3's live figure (onnxruntime-web, pinned by
# package-lock.json). Without npm the book still builds, and the figure says what to install.
NODE_STAMP := node_modules/.installed

.PHONY: env book test student clean serve
env: $(STAMP) $(NODE_STAMP)

$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error && touch $@; \
	else echo "npm not found: chapter 3's live figure will ask for Node.js (https://nodejs.org)"; fi

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book,test]"
	touch $(STAMP)

## make book: execute every chapter once, then write the website to _build/html (warnings are
## errors) and the student notebooks to _build/student; times in _build/execution.json
book: $(STAMP) $(NODE_STAMP)
	$(BIN)/python tools/build_book.py

## make serve: the built site on http://localhost:8000 (WebAssembly, and so chapter 3's
## live figure, does not run from file:// pages)
serve:
	$(BIN)/python -m http.server --directory _build/html 8000

## make student: the student notebooks (solutions replaced by stubs) into student/ and the plain
## copies the Colab button opens into colab/ (plain Markdown, no MyST), nothing executed
student: $(STAMP)
	$(BIN)/python tools/student_notebooks.py

## make test: the whole test suite: unit tests, then the book built as by `make book` (chapters
## in reverse order, each must stand alone) and every page opened in headless Chromium
test: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf _build .pytest_cache
