"""Answers and gateway reports reach the workflows that wait for them.

Every path an answer can take (SMS reply, keypress, signed link, IM button, a duty
officer confirming on someone's behalf, a gateway status callback, the
simulator's controls) ends in `acknowledge` (acks.py), so they all behave alike.
sms.py parses and matches SMS replies (a 到户 relay confirmation too), held.py keeps the replies from a shared
number for the duty office to assign, reports.py takes the gateways' status
callbacks and keypresses, and shown.py tells this process's live boards of the answers just shown on them.

Database work runs in short transactions on a worker thread, never across an await
of Temporal: a write transaction held while the event loop waits would stall every
other request on SQLite.
"""
from __future__ import annotations

from api.services.answers.acks import (
    ANSWER_UPDATE_TIMEOUT,
    RECORDED_TEXT,
    AnswerConflict,
    Answered,
    AnswerError,
    acknowledge,
)
from api.services.answers.held import HeldReply, ambiguous_answers, assign_answer
from api.services.answers.reports import PROGRESS, STATUS_MAP, gateway_report
from api.services.answers.sms import ACK_WORDS, HELD_TEXT, OUTSTANDING_WINDOW, parse_relay, parse_reply, sms_reply

__all__ = ["ACK_WORDS", "ANSWER_UPDATE_TIMEOUT", "HELD_TEXT", "OUTSTANDING_WINDOW", "PROGRESS", "RECORDED_TEXT",
           "STATUS_MAP", "AnswerConflict", "AnswerError", "Answered", "HeldReply", "acknowledge", "ambiguous_answers",
           "assign_answer", "gateway_report", "parse_relay", "parse_reply", "sms_reply"]
