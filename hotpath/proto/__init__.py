"""Protocol definitions. Generated stubs (``*_pb2*.py``) are built, not committed.

They are generated at build time by :mod:`hotpath.proto.build` (``scripts/bootstrap.sh`` runs it; the
wheel build runs it through ``setup.py``), never at import. Import stubs as
``from hotpath.proto import stt_pb2, stt_pb2_grpc``; a checkout without them gets one clear error.
"""

from __future__ import annotations

__all__: list[str] = []


def __getattr__(name: str):
    # ``from hotpath.proto import x_pb2`` asks for the attribute before importing the submodule:
    # import it here, and turn a missing generated module into one clear error.
    if name.endswith(("_pb2", "_pb2_grpc")):
        import importlib

        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            from hotpath.errors import ConfigError

            raise ConfigError(f"the generated protobuf stub hotpath.proto.{name} is missing",
                              hint="run scripts/bootstrap.sh (or: python -m hotpath.proto.build)") from None
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
