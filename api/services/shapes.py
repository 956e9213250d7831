"""What the REST routes answer, declared (`response_model`): the base of the JSON shapes the services build.

`Out` lets through any key it does not name (`extra="allow"`): a shape names the keys clients rely on
and the OpenAPI schema documents them, and a key added to the service's dict is never silently dropped.
Times the services already write as text (`.isoformat()`) are declared as `Timestamp` (a string in
date-time format), so they are passed on as written, never re-formatted."""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class AnsweredOut(Out):
    """What became of an answer (api.services.answers.Answered.as_dict)."""

    recorded: str = Field(description="taken | late | repeat")
    workflows: int
    late: int
    late_by_s: int | float | None


class AckOut(AnsweredOut):
    acknowledged: str = Field(description="the person's id")


class AssignedOut(AnsweredOut):
    id: int = Field(description="the held reply's id")
    person_id: str
    subject: str | None
