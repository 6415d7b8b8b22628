"""responseFormat → one ResponseFormat: JSON schema (for the server / grammar), pydantic validator,
and the DuckDB type and ``from_json`` structure of the typed SQL result.

Three spellings are accepted, as in the ai_query contract:
``'STRUCT<reasoning: STRING, questions: ARRAY<STRING>>'`` (Databricks DDL), a JSON schema (plain, or
OpenAI's ``{"type": "json_schema", "json_schema": {"schema": ...}}``), or the name of a pydantic model
defined in udfs/. Internally everything goes through a JSON schema.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from ..errors import did_you_mean
from .errors import ResponseFormatError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)

# sqlglot DataType names → JSON schema types
_DDL_SCALARS = {
    "TEXT": "string", "VARCHAR": "string", "CHAR": "string", "NCHAR": "string", "NVARCHAR": "string",
    "INT": "integer", "BIGINT": "integer", "SMALLINT": "integer", "TINYINT": "integer",
    "FLOAT": "number", "DOUBLE": "number", "DECIMAL": "number",
    "BOOLEAN": "boolean",
}
_DUCKDB_SCALARS = {"string": "VARCHAR", "integer": "BIGINT", "number": "DOUBLE", "boolean": "BOOLEAN"}
_FORMAT_HINT = ("write 'STRUCT<field: STRING, items: ARRAY<STRING>>', a JSON schema object, "
                "or the name of a pydantic model defined in udfs/")


@dataclass(frozen=True)
class ResponseFormat:
    source: str
    name: str
    json_schema: dict[str, Any]
    strict: bool
    validator: type[BaseModel]

    @property
    def json_structure(self) -> str:
        """The constant second argument of DuckDB's from_json for this format."""
        return json.dumps(duckdb_structure(self.json_schema), separators=(",", ":"))

    def validate(self, text: str) -> str:
        """Parse and validate an answer; the normalised JSON text, or ValueError saying what is wrong."""
        data = extract_json(text)
        try:
            value = self.validator.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(root)"
            raise ValueError(f"answer does not match the response format at {where}: {first['msg']}") from None
        return value.model_dump_json(by_alias=True)


def extract_json(text: str) -> Any:
    """The JSON value in an answer: the whole text, a ```json fence, or the outermost {...}."""
    candidates = [text.strip()]
    candidates += [m.strip() for m in _FENCE.findall(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start:end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    snippet = text[:80].replace("\n", " ")
    raise ValueError(f"answer is not JSON: {snippet!r}")


# --------------------------------------------------------------------------- parsing

def parse_response_format(source: str, models: dict[str, type[BaseModel]] | None = None) -> ResponseFormat:
    """Parse a responseFormat string; ResponseFormatError with a fix hint when it is not usable."""
    models = models or {}
    return _parse_cached(source.strip(), tuple(sorted(models.items(), key=lambda kv: kv[0])))


@lru_cache(maxsize=256)
def _parse_cached(text: str, models: tuple[tuple[str, type[BaseModel]], ...]) -> ResponseFormat:
    if text.startswith("{"):
        return _from_json_text(text)
    if _IDENTIFIER.match(text) and text.upper() != "STRUCT":
        return _from_model_name(text, dict(models))
    return _from_ddl(text)


def _from_json_text(text: str) -> ResponseFormat:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ResponseFormatError(f"responseFormat is not valid JSON: {exc}", hint=_FORMAT_HINT) from None
    name, strict = "response", False
    if data.get("type") == "json_schema" and isinstance(data.get("json_schema"), dict):
        wrapper = data["json_schema"]
        name, strict = wrapper.get("name", name), bool(wrapper.get("strict", False))
        data = wrapper.get("schema")
    if isinstance(data, dict):
        _check_types(data, "$")
    if not isinstance(data, dict) or data.get("type") != "object" or "properties" not in data:
        raise ResponseFormatError("responseFormat JSON schema must describe an object with 'properties'",
                                  hint=_FORMAT_HINT)
    return ResponseFormat(text, name, data, strict, model_from_schema(data, name))


JSON_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")


def _check_types(schema: Any, where: str) -> None:
    """Every "type" in the schema is a JSON Schema type (a typo would otherwise reach the server)."""
    if isinstance(schema, list):
        for i, item in enumerate(schema):
            _check_types(item, f"{where}[{i}]")
        return
    if not isinstance(schema, dict):
        return
    kinds = schema.get("type")
    for kind in kinds if isinstance(kinds, list) else [kinds] if kinds is not None else []:
        if kind not in JSON_TYPES:
            raise ResponseFormatError(f"responseFormat JSON schema: {where}.type is {kind!r}, not a JSON "
                                      "Schema type", hint=did_you_mean(str(kind), JSON_TYPES)
                                      or f"types: {', '.join(JSON_TYPES)}")
    for key in ("properties", "$defs", "definitions"):
        for name, child in (schema.get(key) or {}).items() if isinstance(schema.get(key), dict) else ():
            _check_types(child, f"{where}.{key}.{name}")
    for key in ("items", "anyOf", "oneOf", "allOf", "additionalProperties"):
        if key in schema:
            _check_types(schema[key], f"{where}.{key}")


def _from_model_name(name: str, models: dict[str, type[BaseModel]]) -> ResponseFormat:
    model = models.get(name)
    if model is None:
        known = ", ".join(sorted(models)) or "none are defined"
        hint = did_you_mean(name, models) or f"define `class {name}(BaseModel)` in a file under udfs/"
        raise ResponseFormatError(f"responseFormat names pydantic model '{name}', which is not defined "
                                  f"(known: {known})", hint=hint)
    return ResponseFormat(name, model.__name__, model.model_json_schema(), False, model)


def _from_ddl(text: str) -> ResponseFormat:
    schema = ddl_to_schema(text)
    return ResponseFormat(text, "response", schema, True, model_from_schema(schema, "response"))


def ddl_to_schema(text: str) -> dict[str, Any]:
    """'STRUCT<a: STRING, b: ARRAY<INT>>' (or Databricks' 'a STRING, b ARRAY<INT>') → strict JSON schema."""
    from sqlglot import exp
    from sqlglot.errors import ParseError

    ddl = text if text.upper().startswith("STRUCT") else f"STRUCT<{_colon_fields(text)}>"
    try:
        dtype = exp.DataType.build(ddl, dialect="databricks")
    except (ParseError, ValueError) as exc:
        from ..compile import plain_parser_message

        raise ResponseFormatError(f"cannot parse responseFormat {text!r}: "
                                  f"{plain_parser_message(str(exc).splitlines()[0])}",
                                  hint=_FORMAT_HINT) from None
    if dtype.this != exp.DataType.Type.STRUCT:
        raise ResponseFormatError(f"responseFormat {text!r} must be a STRUCT<...>", hint=_FORMAT_HINT)
    return _dtype_to_schema(dtype, text)


def _colon_fields(text: str) -> str:
    """'a STRING, b INT' → 'a: STRING, b: INT' (top level only)."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch in "<("
        depth -= ch in ">)"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    fields = []
    for part in parts:
        bits = part.strip().split(None, 1)
        if len(bits) != 2:
            raise ResponseFormatError(f"cannot parse responseFormat {text!r}", hint=_FORMAT_HINT)
        fields.append(f"{bits[0].rstrip(':')}: {bits[1]}")
    return ", ".join(fields)


def _dtype_to_schema(dtype: Any, source: str) -> dict[str, Any]:
    from sqlglot import exp

    kind = dtype.this
    if kind == exp.DataType.Type.STRUCT:
        props = {}
        for column in dtype.expressions:
            props[column.name] = _dtype_to_schema(column.args["kind"], source)
        if not props:
            raise ResponseFormatError(f"responseFormat {source!r} has a STRUCT without fields", hint=_FORMAT_HINT)
        return {"type": "object", "properties": props, "required": list(props),
                "additionalProperties": False}
    if kind == exp.DataType.Type.ARRAY:
        return {"type": "array", "items": _dtype_to_schema(dtype.expressions[0], source)}
    json_type = _DDL_SCALARS.get(kind.name)
    if json_type is None:
        raise ResponseFormatError(f"responseFormat {source!r}: type {dtype.sql('databricks')} is not supported",
                                  hint="use STRING, INT, BIGINT, DOUBLE, BOOLEAN, ARRAY<...> or STRUCT<...>")
    return {"type": json_type}


# --------------------------------------------------------------------------- schema → pydantic / DuckDB

def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        path = schema["$ref"].lstrip("#/").split("/")
        target: Any = root
        for part in path:
            target = target[part]
        schema = target
    return schema


def _non_null(schema: dict[str, Any], root: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    schema = _resolve(schema, root)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [_resolve(s, root) for s in schema[key]]
            rest = [s for s in options if s.get("type") != "null"]
            if len(rest) == 1:
                return rest[0], len(rest) < len(options)
    kind = schema.get("type")
    if isinstance(kind, list) and "null" in kind and len(kind) == 2:
        return {**schema, "type": next(k for k in kind if k != "null")}, True
    return schema, False


def _py_type(schema: dict[str, Any], root: dict[str, Any], name: str) -> Any:
    schema, nullable = _non_null(schema, root)
    if "enum" in schema:
        annotation: Any = Literal[tuple(schema["enum"])]
    else:
        kind = schema.get("type")
        if kind == "object" and "properties" in schema:
            annotation = model_from_schema(schema, name, root)
        elif kind == "array":
            annotation = list[_py_type(schema.get("items", {}), root, name + "Item")]
        else:
            annotation = {"string": str, "integer": int, "number": float, "boolean": bool,
                          "object": dict}.get(kind, Any)
    return Optional[annotation] if nullable else annotation  # noqa: UP045 (runtime construction)


def model_from_schema(schema: dict[str, Any], name: str = "response",
                      root: dict[str, Any] | None = None) -> type[BaseModel]:
    """A pydantic model validating the object a JSON schema describes (the common subset)."""
    root = root or schema
    required = set(schema.get("required", []))
    fields: dict[str, Any] = {}
    for prop, sub in schema.get("properties", {}).items():
        annotation = _py_type(sub, root, f"{name}_{prop}")
        fields[prop] = (annotation, ...) if prop in required else (Optional[annotation], None)  # noqa: UP045
    extra = "forbid" if schema.get("additionalProperties") is False else "ignore"
    safe = re.sub(r"\W", "_", name) or "response"
    return create_model(safe, __config__=ConfigDict(extra=extra), **fields)


def duckdb_structure(schema: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """The JSON structure DuckDB's from_json turns into a typed value (STRUCT, LIST, scalars)."""
    root = root or schema
    schema, _ = _non_null(schema, root)
    kind = schema.get("type")
    if "enum" in schema:
        return "VARCHAR" if all(isinstance(v, str) for v in schema["enum"]) else "JSON"
    if kind == "object" and schema.get("properties"):
        return {k: duckdb_structure(v, root) for k, v in schema["properties"].items()}
    if kind == "array":
        return [duckdb_structure(schema.get("items", {}), root)]
    return _DUCKDB_SCALARS.get(kind, "JSON")


def duckdb_type(structure: Any) -> str:
    """DuckDB type string of a from_json structure (for docs, plan output and tests)."""
    if isinstance(structure, dict):
        return "STRUCT(" + ", ".join(f'"{k}" {duckdb_type(v)}' for k, v in structure.items()) + ")"
    if isinstance(structure, list):
        return duckdb_type(structure[0]) + "[]"
    return structure


def example_value(schema: dict[str, Any], seed: str = "x", name: str = "value",
                  root: dict[str, Any] | None = None) -> Any:
    """A deterministic value valid for (the common subset of) a JSON schema: plan placeholders, stub answers."""
    root = root or schema
    schema = _resolve(schema, root)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if _resolve(s, root).get("type") != "null"] or schema[key]
            return example_value(options[0], seed, name, root)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return {k: example_value(v, seed, k, root) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        count = max(min(3, schema.get("maxItems", 3)), schema.get("minItems", 0), 1)
        return [example_value(schema.get("items", {"type": "string"}), f"{seed}{i}", f"{name}{i}", root)
                for i in range(count)]
    if kind == "integer":
        return sum(map(ord, seed)) % 100
    if kind == "number":
        return 0.5
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return f"{name} {seed}"
