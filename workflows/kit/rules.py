"""A procedure's rules of order: one small refusal function per step, registered by name.

A workflow's update validators ask `refusal(action, ctx, req, now)`; the book runs the checks every
step shares (`before`: who may act at all, whether the procedure is still open) and then the
step's own rule. Each rule is a plain function of the procedure's state, unit-tested without a
server (tests/unit/test_procedure_rules.py). A refusal is (forbidden | conflict | invalid |
not_found, reason); the API answers 403/409/422/404 with the reason (api/services/steps.py).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Generic, TypeVar

from temporalio.exceptions import ApplicationError

Refusal = tuple[str, str]
C = TypeVar("C")
Rule = Callable[[C, Any, datetime], "Refusal | None"]
Before = Callable[[C, str, Any, datetime], "Refusal | None"]


class RuleBook(Generic[C]):
    """The rules of one procedure: `@book.rule("submit")` registers the rule of the step `submit`."""

    def __init__(self, name: str, before: Before | None = None) -> None:
        self.name = name
        self.before = before
        self.rules: dict[str, Rule] = {}

    def rule(self, *actions: str) -> Callable[[Rule], Rule]:
        def register(fn: Rule) -> Rule:
            for action in actions:
                if action in self.rules:
                    raise ValueError(f"{self.name}: the step {action!r} has a rule already ({self.rules[action].__name__})")
                self.rules[action] = fn
            return fn
        return register

    def refusal(self, action: str, ctx: C, req: Any, now: datetime) -> Refusal | None:
        """Why the procedure refuses this step now; None if it is allowed."""
        if action not in self.rules:
            raise KeyError(f"{self.name}: no rule for the step {action!r}")
        if self.before is not None and (why := self.before(ctx, action, req, now)) is not None:
            return why
        return self.rules[action](ctx, req, now)

    def refuse_if(self, action: str, ctx: C, req: Any, now: datetime) -> None:
        """Raise the refusal as the non-retryable ApplicationError an update validator raises."""
        refuse(self.refusal(action, ctx, req, now))


def refuse(why: Refusal | None) -> None:
    """Raise a refusal (a rule's answer, or a check of a validator's own) as the non-retryable ApplicationError
    an update validator raises; nothing if None."""
    if why is not None:
        raise ApplicationError(why[1], type=why[0], non_retryable=True)
