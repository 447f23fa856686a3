# Ketch: `make demo` runs the main job, `make test` runs the tests.
# Both are self-contained on a fresh Debian 12 machine run as root: they install
# the Debian packages they need and a virtualenv in .venv.

SYSTEM_PYTHON ?= /usr/bin/python3
VENV          ?= .venv
PY            := $(VENV)/bin/python
BIN           := $(VENV)/bin
DEMO_DIR      ?= /tmp/ketch-demo
# Packages the runtime, the image tool and the tests need (the tests compare
# against runc/umoci/skopeo and run a real registry; apache2-utils makes its htpasswd).
APT_PACKAGES  := python3-venv python3-dev libffi-dev gcc make busybox-static \
                 libseccomp-dev runc umoci skopeo docker-registry iproute2 procps \
                 apache2-utils debootstrap

.PHONY: all deps venv demo test lint conformance orchestrators bench bench-registry clean FORCE

all: demo

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The editable install is setuptools' "strict" mode: build/__editable__.*/ketch/ is a
# tree of symlinks to the source files, put on sys.path by a plain path .pth. The
# default mode instead imports a finder module (pathlib, re, urllib.parse, ...) in
# `site` at every start of every Python process of the venv (`python -c pass` 20
# instead of 10 ms; `ketch state` ~5 ms slower). Edits to existing files show at
# once (symlinks); a module or schema file added, removed or renamed needs a
# reinstall, so the stamp depends on the list of those files ($(SOURCE_LIST),
# rewritten only when it changes).
# Keep build/: removing it breaks the venv until the next `make venv`.
SOURCE_LIST   := build/ketch-source-files.txt

$(SOURCE_LIST): FORCE
	@mkdir -p $(@D)
	@find runtime image spec-schemas \( -name '*.py' -o -name '*.json' \) \
	    -not -path '*/__pycache__/*' -not -name '_generated_*' | LC_ALL=C sort > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

$(VENV)/.installed: pyproject.toml setup.py runtime/syscalls/_build.py $(SOURCE_LIST)
	$(MAKE) deps
	test -x $(PY) || $(SYSTEM_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --config-settings editable_mode=strict -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# The main job: busybox-static -> image (ketch-image import) -> bundle
# (ketch-image unpack) -> container (ketch run), which prints what it sees.
demo: venv
	@rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)/rootfs/bin $(DEMO_DIR)/rootfs/etc
	@cp /bin/busybox $(DEMO_DIR)/rootfs/bin/busybox
	@for a in $$(/bin/busybox --list); do [ "$$a" = busybox ] || ln -sf busybox $(DEMO_DIR)/rootfs/bin/$$a; done
	@printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > $(DEMO_DIR)/rootfs/etc/passwd
	@printf 'root:x:0:\nnogroup:x:65534:\n' > $(DEMO_DIR)/rootfs/etc/group
	@mkdir -p $(DEMO_DIR)/rootfs/proc $(DEMO_DIR)/rootfs/sys $(DEMO_DIR)/rootfs/dev $(DEMO_DIR)/rootfs/tmp
	@printf '%s\n' '#!/bin/sh' \
	    'echo "hostname:   $$(hostname)"' \
	    'echo "user:       $$(id)"' \
	    'echo "processes:"; ps -o pid,comm' \
	    'echo "root mount: $$(awk '"'"'$$5 == "/"'"'"' /proc/self/mountinfo)"' \
	    > $(DEMO_DIR)/rootfs/bin/ketch-demo && chmod 755 $(DEMO_DIR)/rootfs/bin/ketch-demo
	$(BIN)/ketch-image import --cmd '["/bin/ketch-demo"]' $(DEMO_DIR)/rootfs $(DEMO_DIR)/layout:busybox
	$(BIN)/ketch-image unpack $(DEMO_DIR)/layout:busybox $(DEMO_DIR)/bundle
	@# a plain pipe instead of a pty, and a hostname of our own
	$(PY) -c 'import json,sys; p=sys.argv[1]; c=json.load(open(p)); c["process"]["terminal"]=False; c["hostname"]="ketch-demo"; json.dump(c,open(p,"w"),indent=2)' $(DEMO_DIR)/bundle/config.json
	$(BIN)/ketch --root $(DEMO_DIR)/state run --bundle $(DEMO_DIR)/bundle ketch-demo

test: venv
	$(PY) -m pytest -q -rs

# The OCI runtime-tools validation suite against ketch and runc in one run
# (RT_TESTS="a b" for a subset); prints both side by side.
CONFORMANCE_OUT ?= /tmp/ketch-conformance
conformance: venv
	rm -rf $(CONFORMANCE_OUT) && mkdir -p $(CONFORMANCE_OUT)
	-bash conformance/runtime-validation.sh $(abspath $(BIN)/ketch) $(CONFORMANCE_OUT)/ketch > /dev/null
	-bash conformance/runtime-validation.sh $$(command -v runc) $(CONFORMANCE_OUT)/runc > /dev/null
	$(PY) conformance/compare.py $(CONFORMANCE_OUT)/ketch/results.txt $(CONFORMANCE_OUT)/runc/results.txt

# podman and a private containerd driving ketch (conformance/orchestrators.sh)
orchestrators: venv
	bash conformance/orchestrators.sh $(abspath $(BIN)/ketch)

# ketch run /bin/true beside runc run, interleaved in one run
bench: venv
	$(PY) benchmarks/run_true.py

# ketch-image push/pull beside skopeo on a ~50 MB debootstrap image, interleaved
bench-registry: venv
	@command -v debootstrap >/dev/null || { apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
	$(PY) benchmarks/registry_transfer.py

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info $(DEMO_DIR)
