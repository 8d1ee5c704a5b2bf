"""Fixtures of the intent tests: the shipped model, the dataset, a CLI runner over the intent group."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from hotpath.intent.data import DATA_DIR, load_examples
from hotpath.intent.model import OnnxIntentClassifier
from hotpath.intent.settings import SHIPPED_MODEL_DIR


@pytest.fixture(scope="session")
def shipped() -> OnnxIntentClassifier:
    return OnnxIntentClassifier(SHIPPED_MODEL_DIR)


@pytest.fixture(scope="session")
def test_split():
    return load_examples(DATA_DIR / "test.jsonl")


@pytest.fixture(scope="session")
def intent_cli():
    """(runner, app) with the intent group and ``bench intent`` registered as the root does."""
    from bench.intent import register as register_bench
    from hotpath.commands.intent import register

    root = typer.Typer()
    bench = typer.Typer()
    root.add_typer(bench, name="bench")
    register(root, bench)
    register_bench(bench)
    return CliRunner(), root
