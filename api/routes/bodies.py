"""Request bodies derived from the workflow inputs they are passed on to.

A route's body is the workflow's `*In` model without who asks (the actor and role come from the
caller's token, ids from the path): `body_of` takes the named fields of the input model with their
types, constraints and defaults, so the API refuses what the workflow would refuse, with the same
validation messages, and a constraint changed in the workflow changes the API with it."""
from __future__ import annotations

import sys
from typing import Any

from pydantic import BaseModel, create_model
from pydantic.fields import FieldInfo


def body_of(source: type[BaseModel], name: str, *fields: str, described: dict[str, str] | None = None,
            **overrides: Any) -> type[BaseModel]:
    """The model `name` with `fields` of `source`; `described` gives a field a description of its own (the
    API's wording), `overrides` replace a field outright as (annotation, Field(...))."""
    out: dict[str, Any] = {}
    for f in fields:
        info = source.model_fields[f]
        if described and f in described:
            info = FieldInfo.merge_field_infos(info, description=described[f])
        out[f] = (info.annotation, info)
    out.update(overrides)
    # the calling module's name: the OpenAPI schema names two bodies of one name after their modules, as before
    return create_model(name, __module__=sys._getframe(1).f_globals["__name__"], **out)
