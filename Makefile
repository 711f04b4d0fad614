# The two quick-start commands: `make app` and `make test`. Each installs what it needs first.
# Every pip install is pinned by constraints.txt (`python scripts/freeze_constraints.py` rewrites it).
PYTHON ?= python3
PIP := $(PYTHON) -m pip
PIN := -c constraints.txt
CHROMIUM := /usr/bin/chromium

.PHONY: install install-test install-browser app test

install:
	$(PIP) install -r requirements.txt $(PIN)
	# These carry offline weights but pin old torch/numpy in their metadata: no dependencies.
	$(PIP) install --no-deps -r requirements-nodeps.txt $(PIN)

install-test: install install-browser
	$(PIP) install -r requirements-test.txt $(PIN)

# Debian's Chromium for tests/test_browser.py: Playwright drives it, never downloading a browser.
# Re-runs skip apt once it is there. Without root (and no sudo) it only says what to run, and the
# browser test skips outside CI; under CI (CI=true) a missing browser is an error.
install-browser:
	@if [ -x $(CHROMIUM) ]; then \
		echo "install-browser: $(CHROMIUM) is already installed"; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
		sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	else \
		echo "install-browser: no $(CHROMIUM); run 'sudo apt-get install chromium' for the browser test"; \
		[ -z "$$CI" ]; \
	fi

app: install
	$(PYTHON) app.py

test: install-test
	$(PYTHON) -m pytest
