"""Pydantic response models of the bank pipeline (names usable as ai_query responseFormat).

``QuestionSet`` is the source's {reasoning, questions[]} answer of step 2 as a pydantic model: pass
``--vars '{question_response_format: QuestionSet}'`` to have every teacher answer validated (and
re-asked when invalid) against it instead of the JSON schema macros/prompts.sql builds from the vars.
"""

from pydantic import BaseModel, Field


class QuestionSet(BaseModel):
    reasoning: str = Field(max_length=1000, description="the step-by-step reasoning, briefly")
    questions: list[str] = Field(min_length=1, max_length=10,
                                 description="new, short, diverse customer questions")
