# The two commands of the README. Both set up everything first (idempotent, fast when done).
.PHONY: setup lab test lint

setup:
	./scripts/setup

lab: setup
	./scripts/lab

test: setup
	.venv/bin/ruff check .
	.venv/bin/python -m pytest

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
