"""responseFormat parsing, answer validation, modelParameters checks (no server needed)."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, field_validator

from sqlsynth.llm.errors import ModelParametersError, ResponseFormatError
from sqlsynth.llm.params import (
    check_supported,
    effective,
    openai_arguments,
    parse_parameters_json,
    validate_parameters,
)
from sqlsynth.llm.schema import duckdb_type, example_value, extract_json, parse_response_format


class Questions(BaseModel):
    reasoning: str
    questions: list[str]

    @field_validator("questions")
    @classmethod
    def drop_empty(cls, value: list[str]) -> list[str]:
        return [q for q in value if q.strip()]


def test_ddl_struct_gives_strict_schema_and_duckdb_structure():
    fmt = parse_response_format("STRUCT<reasoning: STRING, questions: ARRAY<STRING>, n: INT, ok: BOOLEAN>")
    assert fmt.json_schema["required"] == ["reasoning", "questions", "n", "ok"]
    assert fmt.json_schema["additionalProperties"] is False
    assert json.loads(fmt.json_structure) == {"reasoning": "VARCHAR", "questions": ["VARCHAR"],
                                              "n": "BIGINT", "ok": "BOOLEAN"}
    assert duckdb_type(json.loads(fmt.json_structure)).startswith('STRUCT("reasoning" VARCHAR, "questions" VARCHAR[]')


def test_databricks_field_list_and_nested_struct():
    fmt = parse_response_format("content STRING, meta STRUCT<lang: STRING, scores: ARRAY<DOUBLE>>")
    assert json.loads(fmt.json_structure) == {"content": "VARCHAR",
                                              "meta": {"lang": "VARCHAR", "scores": ["DOUBLE"]}}


def test_json_schema_plain_and_openai_wrapper():
    schema = {"type": "object", "properties": {"label": {"type": "string", "enum": ["yes", "no"]}},
              "required": ["label"]}
    for text in (json.dumps(schema), json.dumps({"type": "json_schema",
                                                 "json_schema": {"name": "lbl", "schema": schema}})):
        fmt = parse_response_format(text)
        assert fmt.validate('{"label": "yes"}') == '{"label":"yes"}'
        with pytest.raises(ValueError, match="label"):
            fmt.validate('{"label": "maybe"}')


def test_pydantic_model_by_name_runs_its_validators():
    fmt = parse_response_format("Questions", {"Questions": Questions})
    assert json.loads(fmt.validate('{"reasoning": "r", "questions": ["a", " ", "b"]}'))["questions"] == ["a", "b"]
    assert json.loads(fmt.json_structure) == {"reasoning": "VARCHAR", "questions": ["VARCHAR"]}


def test_validate_extracts_json_from_fences_and_prose():
    fmt = parse_response_format("STRUCT<content: STRING>")
    assert fmt.validate('Sure!\n```json\n{"content": "x"}\n```') == '{"content":"x"}'
    assert fmt.validate('Answer: {"content": "y"} hope that helps') == '{"content":"y"}'
    with pytest.raises(ValueError, match="not JSON"):
        fmt.validate("I cannot do that")
    with pytest.raises(ValueError, match="content"):
        fmt.validate('{"other": 1}')
    assert extract_json("[1, 2]") == [1, 2]


@pytest.mark.parametrize("text, message", [
    ("STRUCT<a: MAP<STRING, INT>>", "not supported"),
    ("STRUCT<>", "without fields"),
    ("{not json", "not valid JSON"),
    ('{"type": "string"}', "must describe an object"),
    ("Unknown", "pydantic model 'Unknown'"),
    ("ARRAY<STRING>", "cannot parse|must be a STRUCT"),
])
def test_invalid_response_formats(text, message):
    with pytest.raises(ResponseFormatError, match=message) as info:
        parse_response_format(text, {"Questions": Questions})
    assert info.value.hint


def test_unknown_model_suggests_close_name():
    with pytest.raises(ResponseFormatError) as info:
        parse_response_format("Question", {"Questions": Questions})
    assert "did you mean 'Questions'" in info.value.hint


def test_example_value_is_valid_for_its_schema():
    fmt = parse_response_format("Questions", {"Questions": Questions})
    assert fmt.validate(json.dumps(example_value(fmt.json_schema, "k")))


def test_model_parameters_types_are_checked():
    assert validate_parameters({"temperature": 0.7, "max_tokens": 512}) == {"temperature": 0.7, "max_tokens": 512}
    with pytest.raises(ModelParametersError, match="temperature"):
        validate_parameters({"temperature": "hot"})
    with pytest.raises(ModelParametersError, match="max_tokens"):
        validate_parameters({"max_tokens": 1.5})
    with pytest.raises(ModelParametersError, match="struct"):
        validate_parameters([1, 2])
    assert dict(parse_parameters_json('{"seed": 3, "top_k": 5}')) == {"seed": 3, "top_k": 5}


def test_openai_arguments_split_known_extra_and_local_only():
    kwargs, extra = openai_arguments({"temperature": 0.5, "max_new_tokens": 9, "top_k": 4,
                                      "num_beams": 2, "sample_id": 7, "extra_body": {"min_p": 0.1}})
    assert kwargs == {"temperature": 0.5, "max_tokens": 9}
    assert extra == {"top_k": 4, "min_p": 0.1}


def test_every_spelling_is_one_canonical_parameter():
    assert validate_parameters({"max_new_tokens": 64, "num_return_sequences": 2, "stop": "x"}) == \
        {"max_tokens": 64, "n": 2, "stop": ["x"]}
    assert validate_parameters({"max_completion_tokens": 5, "max_tokens": 5}) == {"max_tokens": 5}
    with pytest.raises(ModelParametersError, match="another spelling of 'max_tokens'"):
        validate_parameters({"max_new_tokens": 64, "max_tokens": 32})
    # endpoint defaults under one spelling, the call under another: the call wins, one key
    assert effective({"max_new_tokens": 256, "temperature": 0.5}, validate_parameters({"max_tokens": 64}),
                     "transformers", "e") == {"max_tokens": 64, "temperature": 0.5}


def test_each_provider_declares_its_parameters():
    check_supported({"top_k": 4, "extra_body": {}}, "openai", "t")
    with pytest.raises(ModelParametersError, match="temprature") as caught:
        check_supported({"temprature": 0.5}, "openai", "t")
    assert "did you mean 'temperature'" in caught.value.hint
    with pytest.raises(ModelParametersError) as caught:
        check_supported({"presence_penalty": 0.5}, "transformers", "default")
    assert "repetition_penalty" in caught.value.hint
