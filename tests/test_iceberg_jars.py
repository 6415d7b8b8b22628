"""The shaded Jackson jar the Iceberg test adds to PyPI's Iceberg runtime (tests/iceberg_jars.py), built here
from the Jackson jars of the pyspark in this environment: every class moved, none left pointing at the
unshaded package, and the relocated class files still parse (the constant pool walk ends where the class
body starts)."""

from __future__ import annotations

import re
import struct
import zipfile
from pathlib import Path

import pytest
from iceberg_jars import NEW, build_shaded_jackson, relocate_class

pyspark = pytest.importorskip("pyspark")
SPARK_JARS = Path(pyspark.__file__).parent / "jars"


@pytest.fixture(scope="module")
def shaded(tmp_path_factory) -> zipfile.ZipFile:
    return zipfile.ZipFile(build_shaded_jackson(SPARK_JARS, tmp_path_factory.mktemp("jars") / "shaded.jar"))


def test_every_class_is_under_the_shaded_package(shaded):
    classes = [n for n in shaded.namelist() if n.endswith(".class")]
    assert len(classes) > 500
    assert all(n.startswith(NEW) for n in classes)
    assert f"{NEW}core/JsonGenerator.class" in classes  # what Iceberg's runtime jar failed to load
    assert f"{NEW}databind/ObjectMapper.class" in classes


def test_no_reference_to_unshaded_jackson_is_left(shaded):
    unshaded = re.compile(rb"(?<!shaded/)com/fasterxml/jackson/|(?<!shaded\.)com\.fasterxml\.jackson\.")
    for name in shaded.namelist():
        assert not unshaded.search(shaded.read(name)), name


def test_service_files_name_the_shaded_classes(shaded):
    service = "META-INF/services/org.apache.iceberg.shaded.com.fasterxml.jackson.core.JsonFactory"
    assert shaded.read(service).decode().split() == ["org.apache.iceberg.shaded.com.fasterxml.jackson.core.JsonFactory"]


def test_relocated_class_keeps_its_structure():
    (core,) = SPARK_JARS.glob("jackson-core-2.*.jar")
    original = zipfile.ZipFile(core).read("com/fasterxml/jackson/core/JsonFactory.class")
    moved = relocate_class(original)
    assert moved[:10] == original[:10]  # magic, version, constant pool count
    grown = len(moved) - len(original)
    # the class body after the constant pool is byte for byte the same: only names grew
    assert grown > 0 and moved[-200:] == original[-200:]
    assert struct.unpack_from(">H", moved, 8) == struct.unpack_from(">H", original, 8)
