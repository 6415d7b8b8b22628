"""Errors of the llm package: all SqlsynthError subclasses, so the CLI prints them without a traceback."""

from __future__ import annotations

from ..errors import SqlsynthError

# How a row's error begins when an endpoint-wide error (a 401, say) stopped the endpoint before the row
# was sent: error summaries show the cause instead (batch.root_error).
NOT_SENT = "not sent:"


class LLMError(SqlsynthError):
    """Root of ai_query / endpoint errors."""


class EndpointError(LLMError):
    """Unknown endpoint name, missing API key variable, unusable endpoint config."""


class ResponseFormatError(LLMError):
    """responseFormat is not a DDL struct, a JSON schema, or a known pydantic model name."""


class ModelParametersError(LLMError):
    """modelParameters has an unknown type or an out-of-range value."""


class LLMCallError(LLMError):
    """The server kept failing (after retries) or answered something unusable."""

    exit_code = 1


class BudgetError(LLMError):
    """A run would need more uncached calls than the endpoint's max_calls allows."""

    exit_code = 1
