# The two quick-start commands: `make app` and `make test`. Each installs what it needs first.
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: install install-test app test

install:
	$(PIP) install -r requirements.txt
	# These carry offline weights but pin old torch/numpy in their metadata: no dependencies.
	$(PIP) install --no-deps -r requirements-nodeps.txt

install-test: install
	$(PIP) install -r requirements-test.txt

app: install
	$(PYTHON) app.py

test: install-test
	$(PYTHON) -m pytest
