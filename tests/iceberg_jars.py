"""The jars an Iceberg-on-Spark-3.5 session needs, from the Spark 3.5 virtualenv (`make spark35`).

The only Iceberg Spark runtime reachable here is PyPI's snowpark-connect-deps-iceberg (Maven Central is
not): iceberg-spark-runtime-3.5_2.12-1.10.2.jar. Its build left out the Jackson classes Iceberg relocates
to org.apache.iceberg.shaded.com.fasterxml.jackson (table metadata is JSON: every CREATE fails with
NoClassDefFoundError ...shaded/com/fasterxml/jackson/core/JsonGenerator). This module rebuilds exactly that
part the way Iceberg's own shadow build does: Spark 3.5's Jackson jars with the package renamed in every
class file's constant pool and in the service files. Run as a script, it prints the jars, comma-separated
(the value of spark.jars).
"""

from __future__ import annotations

import struct
import sys
import zipfile
from pathlib import Path

RUNTIME_JAR = "iceberg-spark-runtime-3.5_2.12-1.10.2.jar"
JACKSON_JARS = ("jackson-annotations", "jackson-core", "jackson-databind", "jackson-datatype-jsr310")
SHADED_JAR = "iceberg-shaded-jackson.jar"
OLD, NEW = "com/fasterxml/jackson/", "org/apache/iceberg/shaded/com/fasterxml/jackson/"
# constant-pool tags → the fixed size of their entry (Utf8, tag 1, is length-prefixed)
_CP_SIZES = {3: 4, 4: 4, 5: 8, 6: 8, 7: 2, 8: 2, 9: 4, 10: 4, 11: 4, 12: 4, 15: 3, 16: 2, 17: 4, 18: 4,
             19: 2, 20: 2}


def _relocate_text(data: bytes) -> bytes:
    return data.replace(OLD.encode(), NEW.encode()).replace(OLD.replace("/", ".").encode(),
                                                            NEW.replace("/", ".").encode())


def relocate_class(data: bytes) -> bytes:
    """The class file with the Jackson package renamed in its constant pool (names, descriptors,
    signatures and string literals all live there; the rest of the file refers to entries by index)."""
    count = struct.unpack_from(">H", data, 8)[0]
    out, pos, index = [data[:10]], 10, 1
    while index < count:
        tag = data[pos]
        if tag == 1:
            length = struct.unpack_from(">H", data, pos + 1)[0]
            text = _relocate_text(data[pos + 3:pos + 3 + length])  # ASCII names: modified UTF-8 is safe
            out.append(struct.pack(">BH", 1, len(text)) + text)
            pos += 3 + length
        else:
            size = _CP_SIZES[tag]
            out.append(data[pos:pos + 1 + size])
            pos += 1 + size
        index += 2 if tag in (5, 6) else 1  # long and double take two slots
    out.append(data[pos:])
    return b"".join(out)


def _entry_name(name: str) -> str | None:
    """Where an entry of a Jackson jar goes in the shaded jar (None: left out)."""
    if name.startswith(OLD) or name.startswith("META-INF/services/com.fasterxml.jackson."):
        return _relocate_text(name.encode()).decode()
    if name.startswith("META-INF/") and name.rsplit("/", 1)[-1] in ("LICENSE", "NOTICE"):
        return name
    return None  # module-info, multi-release variants, manifests: not needed on the class path


def build_shaded_jackson(spark_jars: Path, out: Path) -> Path:
    temp, written = out.with_suffix(".tmp"), set()
    with zipfile.ZipFile(temp, "w", zipfile.ZIP_DEFLATED) as shaded:
        for prefix in JACKSON_JARS:
            (source,) = [p for p in spark_jars.glob(f"{prefix}-2.*.jar")]
            with zipfile.ZipFile(source) as jar:
                for name in jar.namelist():
                    target = _entry_name(name)
                    if target is None or target in written or name.endswith("/"):
                        continue
                    data = jar.read(name)
                    written.add(target)
                    entry = zipfile.ZipInfo(target, date_time=(1980, 1, 1, 0, 0, 0))  # same bytes each build
                    shaded.writestr(entry, relocate_class(data) if name.endswith(".class") else _relocate_text(data),
                                    compress_type=zipfile.ZIP_DEFLATED)
    temp.replace(out)
    return out


def iceberg_jars(venv: Path) -> list[Path]:
    """[the Iceberg runtime jar, the shaded Jackson it lacks] for the virtualenv's Spark 3.5."""
    venv = venv.resolve()
    (site,) = (venv / "lib").glob("python3*/site-packages")
    runtime = site / "snowpark_connect_deps_iceberg" / "jars" / RUNTIME_JAR
    if not runtime.exists():
        raise FileNotFoundError(f"{runtime} is missing: run `make spark35`")
    shaded = venv / SHADED_JAR
    if not shaded.exists():
        build_shaded_jackson(site / "pyspark" / "jars", shaded)
    return [runtime, shaded]


if __name__ == "__main__":
    print(",".join(str(p) for p in iceberg_jars(Path(sys.argv[1] if len(sys.argv) > 1 else ".venv-spark35"))))
