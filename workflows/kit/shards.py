"""A procedure fanned out to shard workflows (a call-out, a contact-confirmation round): a shard's workflow id is
`<parent>/shard-<n>`. The audit trail keys a chain per shard by it (store/audit.py `chain_of`), the scorecards and
the answers find the parent by it: one format, here."""
from __future__ import annotations

import re

SHARD_MARK = "/shard-"
_SHARD = re.compile(r"/shard-\d+$")


def shard_id(parent: str, shard: int) -> str:
    return f"{parent}{SHARD_MARK}{shard}"


def is_shard(workflow_id: str) -> bool:
    return _SHARD.search(workflow_id) is not None


def is_shard_of(parent: str, workflow_id: str | None) -> bool:
    """Whether `workflow_id` is one of `parent`'s shards."""
    return bool(workflow_id) and workflow_id.startswith(parent + SHARD_MARK) \
        and workflow_id[len(parent) + len(SHARD_MARK):].isdigit()


def parent_of(workflow_id: str) -> str:
    """The parent of a shard's workflow id; any other id is its own."""
    return workflow_id.split(SHARD_MARK)[0]
