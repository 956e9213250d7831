"""Deterministic orchestration only: no I/O, no wall clock, no randomness."""


def all_workflows() -> list[type]:
    from workflows.activation import PlanActivationWorkflow
    from workflows.bulletin import BulletinWorkflow
    from workflows.callout import CalloutShardWorkflow, WarningCalloutWorkflow
    from workflows.drill import DrillWorkflow
    from workflows.freshness import FreshnessRoundWorkflow, FreshnessShardWorkflow
    from workflows.handover import HandoverWorkflow
    from workflows.notice import DutyNoticeWorkflow
    from workflows.publication import PublicationWorkflow
    from workflows.proposal import ResponseProposalWorkflow
    from workflows.readiness import ReadinessCheckWorkflow
    from workflows.reporting import IncidentReportingWorkflow
    from workflows.review import PostEventReviewWorkflow
    from workflows.spotcheck import SpotCheckSweepWorkflow, SpotCheckWorkflow
    from workflows.workorder import WorkOrderWorkflow

    return [WarningCalloutWorkflow, CalloutShardWorkflow, IncidentReportingWorkflow, PlanActivationWorkflow,
            PostEventReviewWorkflow, HandoverWorkflow, DrillWorkflow, SpotCheckWorkflow, SpotCheckSweepWorkflow,
            FreshnessRoundWorkflow, FreshnessShardWorkflow, PublicationWorkflow, WorkOrderWorkflow,
            ResponseProposalWorkflow, DutyNoticeWorkflow, BulletinWorkflow, ReadinessCheckWorkflow]
