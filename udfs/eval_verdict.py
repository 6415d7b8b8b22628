"""The judge's structured verdict (models/eval/eval_judgements.sql: responseFormat := 'JudgeVerdict')."""

from pydantic import BaseModel, Field


class JudgeVerdict(BaseModel):
    in_scope_correctly_handled: bool = Field(description="in-scope answered helpfully, or out-of-scope declined")
    refused: bool = Field(description="the answer declines to help")
    follows_rules: bool = Field(description="no rule of the bank is broken")
    score: int = Field(ge=1, le=5, description="1 (bad) to 5 (excellent)")
    reasoning: str = Field(max_length=160, description="one short sentence")
