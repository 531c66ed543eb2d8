# The two commands the README starts with. Both install what they need first.
.PHONY: test test-fast demo bootstrap lint bench

bootstrap:
	@bash scripts/bootstrap

test: bootstrap
	.venv/bin/ruff check .
	.venv/bin/pytest -q -p no:cacheprovider --junitxml=build/junit.xml
	@.venv/bin/python bench/suite_times.py build/junit.xml

# The inner loop: everything but the tests marked slow (real server stacks, torture
# runs, image round trips), under two minutes.
test-fast: bootstrap
	.venv/bin/ruff check .
	.venv/bin/pytest -q -p no:cacheprovider -m "not slow"

demo: bootstrap
	@bash scripts/demo

lint: bootstrap
	.venv/bin/ruff check .

bench: bootstrap
	.venv/bin/python bench/runtime_start.py
