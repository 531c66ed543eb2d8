# The two commands the README starts with. Both install what they need first.
.PHONY: test demo bootstrap lint bench

bootstrap:
	@bash scripts/bootstrap

test: bootstrap
	.venv/bin/ruff check .
	.venv/bin/pytest -q -p no:cacheprovider

demo: bootstrap
	@bash scripts/demo

lint: bootstrap
	.venv/bin/ruff check .

bench: bootstrap
	.venv/bin/python bench/runtime_start.py
