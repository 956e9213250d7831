"""物资调拨: supplies requested from a depot against an activation, approved (or refused) by the duty office, picked
up and received with quantities; the depot's stock goes down by what was received. Every step is an audit event
under the activation's subject (`activation.supplies.*`, in its case file and replay). A request above the depot's
stock records the shortage and proposes the city reinforcement request (`POST /api/activations/{id}/reinforcements`,
kind `supplies`), filled in.

Not a workflow: no timer or call waits on a step; each step is one database transaction (row, stock, events).
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field
from sqlmodel import Session, func, select

from api.services.errors import ServiceError
from store import activations as activations_store
from store.audit import NewEvent, append
from store.resources import StockLine, SupplyDepot, SupplyRequest
from workflows.kit.events import Supplies as Kinds
from workflows.subjects import activation_subject


class SupplyError(ServiceError):
    pass


class ItemIn(BaseModel):
    item: str = Field(min_length=1, max_length=100)
    quantity: float = Field(gt=0, le=10**12, allow_inf_nan=False)


class SupplyRequestIn(BaseModel):
    depot_id: str = Field(min_length=1, max_length=64, description="a depot of the resource register")
    items: list[ItemIn] = Field(min_length=1, max_length=100)
    purpose: str = Field(default="", max_length=2000, description="what the supplies are for")
    deliver_to: str = Field(default="", max_length=500, description="where they go")


class DecisionIn(BaseModel):
    decision: Literal["approve", "refuse"]
    items: list[ItemIn] = Field(default_factory=list, max_length=100, description=(
        "the quantities approved, item by item (default: what was asked, at most the stock)"))
    comments: str = Field(default="", max_length=2000)


class PickupIn(BaseModel):
    by_name: str = Field(min_length=1, max_length=100, description="who collected the supplies (name, unit)")
    note: str = Field(default="", max_length=2000)


class ReceiptIn(BaseModel):
    items: list[ItemIn] = Field(min_length=1, max_length=100, description="the quantities received, item by item")
    note: str = Field(default="", max_length=2000)


def _fmt(q: float) -> str:
    return f"{q:g}"


def _activation(s: Session, activation_id: str, *, active: bool = True):
    row = activations_store.get(s, activation_id)
    if row is None:
        raise SupplyError(404, f"no activation {activation_id!r}")
    if active and row.status != "active":
        raise SupplyError(409, f"the response {activation_id!r} has ended ({row.status}); no supplies are moved for it")
    return row


def _request(s: Session, activation_id: str, seq: int) -> SupplyRequest:
    req = s.exec(select(SupplyRequest).where(SupplyRequest.activation_id == activation_id,
                                             SupplyRequest.seq == seq)).first()
    if req is None:
        raise SupplyError(404, f"没有第{seq}号物资调拨 / no supplies request {seq} in activation {activation_id!r}")
    return req


def _stock(s: Session, depot_id: str) -> dict[str, StockLine]:
    return {line.item: line for line in s.exec(select(StockLine).where(StockLine.depot_id == depot_id))}


def _unique(items: list[ItemIn], where: str) -> None:
    seen = [i.item for i in items]
    if len(set(seen)) != len(seen):
        raise SupplyError(422, f"{where}: each item once")


def _event(row, req: SupplyRequest, kind: str, step: str, actor: str, at: datetime, **payload) -> NewEvent:
    return NewEvent(subject=activation_subject(row.id), kind=kind, step_id=f"supplies/{req.seq}/{step}",
                    workflow_id=row.workflow_id, actor=actor, at=at,
                    payload={"seq": req.seq, "depot_id": req.depot_id, **payload})


def view(req: SupplyRequest, depot: SupplyDepot | None = None) -> dict:
    out = req.model_dump(mode="json", exclude={"id"})
    out["depot_name"] = depot.name if depot else req.depot_id
    return out


def shortage_proposal(activation_id: str, depot: SupplyDepot, short: list[dict]) -> dict:
    """The city reinforcement request this shortage proposes: the body of POST /api/activations/{id}/reinforcements."""
    what = "、".join(f"{x['item']}{_fmt(x['shortage'])}{x['unit']}" for x in short)
    return {"post": f"/api/activations/{activation_id}/reinforcements",
            "body": {"kind": "supplies", "quantity": what[:200],
                     "detail": f"{depot.name}库存不足,缺口:{what}。请求市级调拨支援。"}}


def request(s: Session, activation_id: str, body: SupplyRequestIn, actor: str) -> dict:
    row = _activation(s, activation_id)
    depot = s.get(SupplyDepot, body.depot_id)
    if depot is None:
        raise SupplyError(422, f"depot_id: no depot {body.depot_id!r} in the resource register")
    _unique(body.items, "items")
    stock = _stock(s, depot.id)
    unknown = [i.item for i in body.items if i.item not in stock]
    if unknown:
        raise SupplyError(422, f"items: {depot.name} holds no {'、'.join(unknown)} (it holds: "
                               f"{'、'.join(sorted(stock)) or 'nothing'})")
    items = []
    for i in body.items:
        line = stock[i.item]
        items.append({"item": i.item, "unit": line.unit, "requested": i.quantity, "stock": line.quantity,
                      "shortage": max(i.quantity - line.quantity, 0), "approved": None, "received": None})
    now = datetime.now(UTC)
    seq = (s.exec(select(func.max(SupplyRequest.seq)).where(SupplyRequest.activation_id == row.id)).one() or 0) + 1
    req = SupplyRequest(activation_id=row.id, seq=seq, depot_id=depot.id, items=items, purpose=body.purpose,
                        deliver_to=body.deliver_to, requested_by=actor, requested_at=now, updated_at=now)
    s.add(req)
    s.flush()
    events = [_event(row, req, Kinds.REQUESTED, "requested", actor, now, depot_name=depot.name, items=items,
                     purpose=body.purpose, deliver_to=body.deliver_to)]
    short = [x for x in items if x["shortage"] > 0]
    proposal = shortage_proposal(row.id, depot, short) if short else None
    if proposal:
        events.append(_event(row, req, Kinds.SHORTAGE, "shortage", actor, now, depot_name=depot.name,
                             shortage=[{k: x[k] for k in ("item", "unit", "requested", "stock", "shortage")} for x in short],
                             proposal=proposal["body"]))
    append(s, events)
    return {**view(req, depot), "reinforcement_proposal": proposal}


def decide(s: Session, activation_id: str, seq: int, body: DecisionIn, actor: str) -> dict:
    row = _activation(s, activation_id)
    req = _request(s, row.id, seq)
    if req.state != "requested":
        raise SupplyError(409, f"第{seq}号物资调拨已{STATE_ZH[req.state]} / supplies request {seq} is {req.state}; "
                               "only a requested one is approved or refused")
    if actor == req.requested_by:
        raise SupplyError(403, f"申请人不能审批自己的物资调拨 / {actor} asked for supplies request {seq} and may not "
                               "approve it: another duty officer does")
    now = datetime.now(UTC)
    depot = s.get(SupplyDepot, req.depot_id)
    if body.decision == "refuse":
        if not body.comments.strip():
            raise SupplyError(422, "comments: say why the request is refused")
        req.state, req.decided_by, req.decided_at, req.comments, req.updated_at = "refused", actor, now, body.comments, now
        append(s, [_event(row, req, Kinds.REFUSED, "decided", actor, now, comments=body.comments)])
        return view(req, depot)
    _unique(body.items, "items")
    asked = {x["item"]: x for x in req.items}
    unknown = [i.item for i in body.items if i.item not in asked]
    if unknown:
        raise SupplyError(422, f"items: request {seq} did not ask for {'、'.join(unknown)}")
    given = {i.item: i.quantity for i in body.items}
    stock = _stock(s, req.depot_id)
    items = []
    for x in req.items:
        have = stock[x["item"]].quantity if x["item"] in stock else 0
        q = given.get(x["item"], min(x["requested"], have))
        if q > x["requested"]:
            raise SupplyError(422, f"items: {x['item']} approved {_fmt(q)} above the {_fmt(x['requested'])} asked")
        if q > have:
            raise SupplyError(409, f"{x['item']}: 库存仅{_fmt(have)}{x['unit']},不能批准{_fmt(q)}{x['unit']} / "
                                   f"the depot holds {_fmt(have)}, {_fmt(q)} cannot be approved")
        items.append({**x, "stock": have, "approved": q})
    if not any(x["approved"] for x in items):
        raise SupplyError(409, "nothing to approve: the depot holds none of it; refuse the request and ask the city")
    req.items, req.state, req.decided_by, req.decided_at, req.updated_at = items, "approved", actor, now, now
    req.comments = body.comments or None
    append(s, [_event(row, req, Kinds.APPROVED, "decided", actor, now, comments=body.comments,
                      items=[{k: x[k] for k in ("item", "unit", "requested", "approved")} for x in items])])
    return view(req, depot)


def pickup(s: Session, activation_id: str, seq: int, body: PickupIn, actor: str) -> dict:
    row = _activation(s, activation_id)
    req = _request(s, row.id, seq)
    if req.state != "approved":
        raise SupplyError(409, f"第{seq}号物资调拨{STATE_ZH[req.state]},不能出库 / supplies request {seq} is "
                               f"{req.state}; only an approved one is picked up")
    now = datetime.now(UTC)
    req.state, req.picked_up_by, req.picked_up_by_name, req.picked_up_at, req.updated_at = (
        "picked_up", actor, body.by_name, now, now)
    append(s, [_event(row, req, Kinds.PICKED_UP, "picked_up", actor, now, by_name=body.by_name, note=body.note)])
    return view(req, s.get(SupplyDepot, req.depot_id))


def receive(s: Session, activation_id: str, seq: int, body: ReceiptIn, actor: str) -> dict:
    """Received with quantities (at most what was approved): the depot's stock goes down by them, in the same
    transaction as the event."""
    row = _activation(s, activation_id, active=False)  # supplies on the road arrive after the response ended too
    req = _request(s, row.id, seq)
    if req.state != "picked_up":
        raise SupplyError(409, f"第{seq}号物资调拨{STATE_ZH[req.state]},不能签收 / supplies request {seq} is "
                               f"{req.state}; only one picked up is received")
    _unique(body.items, "items")
    approved = {x["item"]: x for x in req.items}
    unknown = [i.item for i in body.items if i.item not in approved]
    if unknown:
        raise SupplyError(422, f"items: request {seq} did not ask for {'、'.join(unknown)}")
    got = {i.item: i.quantity for i in body.items}
    stock = _stock(s, req.depot_id)
    items = []
    for x in req.items:
        q = got.get(x["item"], 0)
        if q > (x["approved"] or 0):
            raise SupplyError(422, f"items: {x['item']} received {_fmt(q)} above the {_fmt(x['approved'] or 0)} approved")
        line = stock.get(x["item"])
        if q and (line is None or line.quantity < q):
            raise SupplyError(409, f"{x['item']}: the depot's stock ({_fmt(line.quantity if line else 0)}) is below the "
                                   f"{_fmt(q)} received; correct the stock first")
        items.append({**x, "received": q})
    now = datetime.now(UTC)
    after = {}
    for x in items:
        if x["received"]:
            line = stock[x["item"]]
            line.quantity -= x["received"]
            after[x["item"]] = line.quantity
            s.add(line)
    depot = s.get(SupplyDepot, req.depot_id)
    depot.updated_at = now
    req.items, req.state, req.received_by, req.received_at, req.updated_at = items, "received", actor, now, now
    append(s, [_event(row, req, Kinds.RECEIVED, "received", actor, now, note=body.note,
                      items=[{"item": x["item"], "unit": x["unit"], "approved": x["approved"], "received": x["received"],
                              "stock_after": after.get(x["item"])} for x in items])])
    return view(req, depot)


def listing(s: Session, activation_id: str) -> list[dict]:
    _activation(s, activation_id, active=False)
    rows = list(s.exec(select(SupplyRequest).where(SupplyRequest.activation_id == activation_id)
                       .order_by(SupplyRequest.seq)))
    depots = {d.id: d for d in s.exec(select(SupplyDepot))} if rows else {}
    return [view(r, depots.get(r.depot_id)) for r in rows]


STATE_ZH = {"requested": "待审批", "approved": "已批准", "refused": "未批准", "picked_up": "已出库", "received": "已签收"}
