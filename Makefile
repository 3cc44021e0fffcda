# The two README commands: `make demo` (set up + run the main job on the sample clip) and
# `make test` (set up + run the whole test suite). Both work on a fresh Debian/Ubuntu machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SAMPLE := tests/resources/media/sam2__05_default_juggle.mp4

.PHONY: setup demo test bench clean

setup: $(VENV)/.installed

# FFmpeg shared libraries come from the system (TorchCodec links against them); so does the
# chromium the web page's browser tests drive (Playwright cannot download its own browser here).
# torch is installed first and pinned, so no resolver step can pull a different (CUDA) build.
$(VENV)/.installed: pyproject.toml
	@command -v ffmpeg >/dev/null && command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq ffmpeg chromium; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[test]"
	touch $@

# The depth+matte pipeline through Ray with the depth network at 196 px (examples/demo.yaml) on the
# first 32 frames (one depth window), sized for 2 CPU cores; --overwrite so it can be run again.
# The full preset: README.
demo: setup
	$(BIN)/vdp run $(SAMPLE) --spec examples/demo.yaml --synthetic-weights --max-frames 32 \
	  --overwrite --out demo_out

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) demo_out vdp_out
