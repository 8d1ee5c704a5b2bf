"""Generate the gRPC stubs (``*_pb2.py``, ``*_pb2_grpc.py``, ``.pyi``) of the ``.proto`` files: a build step.

Run by ``scripts/bootstrap.sh`` (``python -m hotpath.proto.build``) and by the wheel build
(``setup.py``'s ``build_py``), so an installed package carries its stubs and never writes into its
own directory at import time (read-only installs work).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

__all__ = ["ensure_generated"]

_HERE = Path(__file__).resolve().parent


def _stale(proto: Path) -> bool:
    outs = [proto.with_name(proto.stem + "_pb2.py"), proto.with_name(proto.stem + "_pb2_grpc.py")]
    return any(not o.exists() or o.stat().st_mtime < proto.stat().st_mtime for o in outs)


def ensure_generated(directory: Path = _HERE) -> list[str]:
    """Regenerate stale stubs in ``directory``; returns the names of the regenerated protos."""
    done = []
    for proto in sorted(directory.glob("*.proto")):
        if not _stale(proto):
            continue
        from grpc_tools import protoc  # grpcio-tools: a build-time dependency
        import grpc_tools

        include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
        # Generated modules import each other as ``hotpath.proto.x_pb2``: the include root is the
        # repo root. Write into a temporary folder, then os.replace: processes importing at the same
        # moment (Ray workers) never see a half-written stub.
        root = directory.parent.parent
        rel = proto.relative_to(root)
        with tempfile.TemporaryDirectory(dir=directory) as tmp:
            args = ["protoc", f"-I{root}", f"-I{include}", f"--python_out={tmp}", f"--pyi_out={tmp}",
                    f"--grpc_python_out={tmp}", str(proto)]
            rc = protoc.main(args)
            if rc != 0:
                from hotpath.errors import ConfigError

                raise ConfigError(f"protoc failed ({rc}) on {proto}", hint="is grpcio-tools installed?")
            for out in (Path(tmp) / rel.parent).iterdir():
                os.replace(out, directory / out.name)
        done.append(proto.name)
    return done


if __name__ == "__main__":
    built = ensure_generated(Path(sys.argv[1]) if len(sys.argv) > 1 else _HERE)
    print("protobuf stubs: " + (", ".join(built) + " generated" if built else "up to date"))
