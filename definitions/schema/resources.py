"""The resource register's kinds (store/resources.py holds the register): a response plan's dispatch names the team
kinds it proposes from the register (`dispatch.team_kinds`), so the kinds are data shared by both. Chinese names:
api/console/i18n_resources.py."""
from __future__ import annotations

TEAM_KINDS = ("fire_rescue", "flood", "forest_fire", "geological", "hazmat", "medical", "militia", "police",
              "power", "traffic", "social")
EQUIPMENT_KINDS = ("pump", "boat", "generator", "vehicle", "lighting", "excavator", "communication", "drone",
                   "fire_fighting", "other")
EXPERT_FIELDS = ("flood", "geology", "forest_fire", "hazmat", "work_safety", "medical", "structure", "meteorology",
                 "other")
