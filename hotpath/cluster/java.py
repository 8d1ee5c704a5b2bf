"""Java for the JVM servers (Kafka, Cassandra): find the JDK, fetch the jars with Maven once.

The jars come from Maven Central through ``services/maven/pom.xml`` (one profile per server, so the
two classpaths never mix; a server with its own ``services/maven/<profile>/pom.xml``, Druid, uses
that one and the mirror ``settings.xml`` beside it) into ``<runtime_dir>/jars/<profile>``; Maven runs only when that folder is
missing. A ``.complete`` marker makes an interrupted download count as missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from hotpath.config import Settings, repo_root
from hotpath.errors import ServiceError

__all__ = ["find_java", "java_major", "ensure_jars", "POM"]

POM = repo_root() / "services" / "maven" / "pom.xml"
_JAVA_HINT = "install Java 17: apt-get install openjdk-17-jre-headless (or set JAVA_HOME)"


def find_java() -> str:
    """The ``java`` to run: ``$JAVA_HOME/bin/java``, else the one on PATH; ServiceError if none."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise ServiceError("java not found: Kafka, Cassandra and Druid need a Java 17 runtime", hint=_JAVA_HINT)
    return found


def java_major(java: str) -> int:
    """The major version of ``java`` (17 for "17.0.15")."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ServiceError(f"{java} -version failed: {exc}", hint=_JAVA_HINT) from exc
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        raise ServiceError(f"cannot tell the version of {java}", hint=_JAVA_HINT)
    major = int(m.group(1))
    return int(m.group(2)) if major == 1 and m.group(2) else major


def check_java(min_major: int = 17, max_major: int | None = None) -> str:
    java = find_java()
    major = java_major(java)
    if major < min_major or (max_major is not None and major > max_major):
        wanted = f"{min_major}" if max_major in (None, min_major) else f"{min_major}..{max_major}"
        raise ServiceError(f"{java} is Java {major}, Kafka, Cassandra and Druid here need Java {wanted}", hint=_JAVA_HINT)
    return java


def jar_dir(settings: Settings, profile: str) -> Path:
    return settings.runtime_dir / "jars" / profile


def ensure_jars(settings: Settings, profile: str, *, say=lambda msg: None) -> Path:  # noqa: ANN001
    """The folder of ``profile``'s jars, downloading them with Maven when missing."""
    target = jar_dir(settings, profile)
    marker = target / ".complete"
    if marker.exists():
        return target
    mvn = shutil.which("mvn")
    if not mvn:
        raise ServiceError(
            f"{profile}: its jars are missing and mvn is not installed", hint="apt-get install maven"
        )
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    log = settings.runtime_dir / "jars" / f"{profile}-mvn.log"
    say(f"  {profile}: fetching jars from Maven Central (once) ...")
    pom, extra = POM, []
    own = POM.parent / profile / "pom.xml"  # a server with its own POM (and mirror settings): Druid
    if own.exists():
        pom = own
        if (own.parent / "settings.xml").exists():
            extra = ["-s", str(own.parent / "settings.xml")]
    argv = [
        mvn, "-q", "-B", *extra, "-f", str(pom), "-P", profile,
        "dependency:copy-dependencies", f"-DoutputDirectory={target}",
    ]  # fmt: skip
    with open(log, "wb") as out:
        try:
            rc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=900).returncode
        except subprocess.TimeoutExpired as exc:
            raise ServiceError(f"{profile}: mvn timed out fetching jars", hint=f"see {log}") from exc
    if rc != 0 or not any(target.glob("*.jar")):
        raise ServiceError(
            f"{profile}: mvn could not fetch the jars (exit {rc})",
            hint=f"see {log}; Maven Central must be reachable",
        )
    marker.write_text("ok\n")
    return target
