# The two commands the README starts with. Both install what they need first.
.PHONY: test test-fast test-nodes demo bootstrap lint bench

bootstrap:
	@bash scripts/bootstrap

# Everything, the virtual-machine nodes (tests/nodes) included: one pytest run, one junit.
test: bootstrap
	.venv/bin/ruff check .
	.venv/bin/pytest -q -p no:cacheprovider --junitxml=build/junit.xml
	@.venv/bin/python bench/suite_times.py build/junit.xml

# The inner loop: everything but the tests marked slow (real server stacks, torture
# runs, image round trips), under two minutes.
test-fast: bootstrap
	.venv/bin/ruff check .
	.venv/bin/pytest -q -p no:cacheprovider -m "not slow and not nodes"

demo: bootstrap
	@bash scripts/demo

lint: bootstrap
	.venv/bin/ruff check .

bench: bootstrap
	.venv/bin/python bench/runtime_start.py

# The node tests only (tests/nodes): boots Debian 12 virtual machines under qemu (TCG), the
# image built once by scripts/node-image and cached in /var/cache/boxwatch-nodes.
test-nodes: bootstrap
	.venv/bin/pytest -q -p no:cacheprovider -m nodes --junitxml=build/junit-nodes.xml tests/nodes
