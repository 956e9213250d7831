"""What a service raises when it refuses: the HTTP status the REST API answers with and the message of its
`detail` (api/app.py turns any `ServiceError` into that answer; the console catches it to show the message
on its page). Each domain names its own subclass (CalloutError, DutyError…) so that a caller can catch one."""
from __future__ import annotations


class ServiceError(ValueError):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)
