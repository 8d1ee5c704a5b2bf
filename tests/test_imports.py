"""Every module of the package imports on a fresh install, and every deliberate error has one root."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import hotpath
from hotpath import errors

MODULES = sorted(m.name for m in pkgutil.walk_packages(hotpath.__path__, prefix="hotpath."))


def test_package_has_the_fixed_layout() -> None:
    for sub in ("actors", "deployments", "graphs", "cluster", "proto", "stores", "streams"):
        assert f"hotpath.{sub}" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name: str) -> None:
    importlib.import_module(name)


def test_every_error_class_derives_from_the_root() -> None:
    found = []
    for name in MODULES:
        module = importlib.import_module(name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Exception) and obj.__module__.startswith("hotpath"):
                found.append(obj)
                assert issubclass(obj, errors.HotpathError), f"{obj.__module__}.{obj.__name__} is outside the root"
    assert errors.BadInput in found
