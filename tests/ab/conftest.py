"""A/B fixtures: the simulator's serving stack (a small generated catalog in in-process stores)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    from bench.ab import Stack

    st = Stack(tmp_path_factory.mktemp("ab-stack"))
    yield st
    st.close()


@pytest.fixture(scope="session")
def recs_settings():
    from hotpath.recs.settings import RecsSettings

    return RecsSettings()
