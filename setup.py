"""Build hook: generate the protobuf stubs into the package before it is built (see hotpath/proto/build.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithStubs(build_py):
    def run(self) -> None:
        spec = importlib.util.spec_from_file_location("_hotpath_proto_build", Path(__file__).parent / "hotpath/proto/build.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # no import of hotpath itself: its dependencies may be absent
        module.ensure_generated(Path(__file__).parent / "hotpath" / "proto")
        super().run()


setup(cmdclass={"build_py": BuildPyWithStubs})
