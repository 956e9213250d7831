"""The duty day: schedules, shift handovers, drills, 六问 spot checks, contact freshness, statistics.

Also the pages people open from their phones (no bearer token; each link is signed, bound to
one person, expires and works once): the 六问 form `/spotcheck/{token}` and the contact
confirmation `/confirm/{token}` (links.py); the voice menu of a spot-check call (Twilio, signed
callbacks) and the simulator's way to play its keypresses (ivr.py).

One module per sub-resource; each has its own `router`, all included in `router` below (the one
api/routes/__init__.py mounts). The work is done by api/services/duty.
"""
from __future__ import annotations

from fastapi import APIRouter

from api.routes.duty import drills, freshness, handovers, ivr, links, schedules, spotchecks

router = APIRouter(tags=["duty day"])
for _module in (schedules, handovers, drills, spotchecks, ivr, freshness, links):
    router.include_router(_module.router)
