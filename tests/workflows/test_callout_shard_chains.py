"""A real call-out's audit trail (issue 25, "the hot row"): each shard writes into a chain of its own under the
call-out's subject (the answers it records by themselves in its answers lane), the call-out's chain seals every
shard chain when it finishes, a late answer after the end goes on in its shard's chain, and the whole verifies; a
shard chain cut short is then found by the seal."""
from __future__ import annotations

from sqlalchemy import text
from sqlmodel import select

from definitions.schema.common import Level
from store.audit import AuditChain, verify
from store.db import get_engine, session_scope
from tests.workflows import callout_helpers
from tests.workflows.callout_helpers import ack, callout_input, events, outbox, start, targets, wait_for
from workflows.kit import events as kinds

people, worker = callout_helpers.people, callout_helpers.worker  # the shared fixtures


def _chains(cid: str) -> dict[str, AuditChain]:
    with session_scope(write=False) as s:
        return {c.chain: c for c in s.exec(select(AuditChain).where(AuditChain.subject == cid))}


async def test_a_callouts_shards_write_their_own_chains_sealed_by_the_callout(env, worker, people):
    inp = callout_input(level=Level.red, towns=["330110001", "330110002", "330110003"]).model_copy(
        update={"shard_size": 4})
    cid = inp.callout_id
    handle = await start(env.client, worker, inp)
    resp = people["330110003002.resp"]
    await wait_for(lambda: [m for m in outbox(cid, person_id=resp) if m.provider_id], what="the last shard's SMS")
    await ack(env.client, cid, resp, "link")
    await wait_for(lambda: targets(cid)[resp].state == "acknowledged", what="ack")
    await handle.result()

    shards = sorted({t.shard for t in targets(cid).values()})
    assert len(shards) >= 4
    chains = _chains(cid)
    answered = f"{cid}/shard-{targets(cid)[resp].shard}"  # its answer in the shard's answers lane
    assert set(chains) == {cid, *(f"{cid}/shard-{n}" for n in shards), f"{answered}/answers"}
    trail = events(cid)
    for ev in trail:  # every shard's events in its own chain (its answer in its lane), the rest in the call-out's
        if ev.kind == "callout.ack":
            assert ev.chain == f"{answered}/answers" and ev.workflow_id == answered
        else:
            assert ev.chain == (ev.workflow_id if ev.workflow_id and ev.workflow_id.startswith(f"{cid}/shard-")
                                else cid)
    seals = {e.payload["chain"]: e for e in events(cid, kinds.Audit.CHAIN_SEALED)}
    assert set(seals) == set(chains) - {cid}
    for key, seal in seals.items():
        assert seal.chain == cid and (seal.payload["length"], seal.payload["head"]) == (chains[key].length,
                                                                                        chains[key].head_hash)
    assert trail[-1].kind == "callout.ended" and trail[-1].seq > max(e.seq for e in seals.values())
    with session_scope(write=False) as s:
        assert verify(s, cid).ok and verify(s).ok

    # an answer after the end: recorded late, in the ended shard's chain, past its seal
    late = people["330110001001.resp"]
    shard = targets(cid)[late].shard
    await ack(env.client, cid, late, "link")
    key = f"{cid}/shard-{shard}"
    await wait_for(lambda: _chains(cid)[key].length > seals[key].payload["length"], what="the late answer")
    with session_scope(write=False) as s:
        assert verify(s, cid).ok

    # the shard chain cut back before its seal, its head row rewritten to match: the seal finds it
    sealed_at = seals[key].payload["length"]
    with get_engine().begin() as conn:
        head = conn.execute(text("SELECT hash FROM audit_event WHERE chain = :c AND chain_seq = :n"),
                            {"c": key, "n": sealed_at - 1}).scalar_one()
        conn.execute(text("DELETE FROM audit_event WHERE chain = :c AND chain_seq >= :n"), {"c": key, "n": sealed_at})
        conn.execute(text("UPDATE audit_chain SET length = :n, head_hash = :h WHERE chain = :c"),
                     {"n": sealed_at - 1, "h": head, "c": key})
    with session_scope(write=False) as s:
        r = verify(s, cid)
    assert not r.ok and r.chain == key and "sealed" in r.reason
