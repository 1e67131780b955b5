# `make demo` trains on the bundled data set, exports every TFLite target and
# prints a report; `make test` runs the test suite. Both create .venv on
# first use and install a Vulkan driver for the LiteRT GPU accelerator.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test vulkan clean

demo: $(INSTALLED) vulkan
	$(BIN)/seqrnn train --data japanese_vowels --out runs/demo --qat-epochs 5
	$(BIN)/seqrnn export runs/demo/model.keras --all \
	    --qat-model runs/demo/model_qat.keras --out runs/demo/tflite

# Two workers, one test file each at a time (module fixtures are built
# once): most of the suite is compilation and conversion, one core each.
test: $(INSTALLED) vulkan
	$(BIN)/python -m pytest -n 2 --dist loadfile

vulkan:
	tools/install_vulkan.sh

$(INSTALLED): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --editable ".[dev]"
	touch $@

clean:
	rm -rf $(VENV) runs build *.egg-info
