"""Deterministic orchestration only: no I/O, no wall clock, no randomness."""


def all_workflows() -> list[type]:
    from workflows.activation import PlanActivationWorkflow
    from workflows.callout import CalloutShardWorkflow, WarningCalloutWorkflow
    from workflows.reporting import IncidentReportingWorkflow
    from workflows.review import PostEventReviewWorkflow

    return [WarningCalloutWorkflow, CalloutShardWorkflow, IncidentReportingWorkflow, PlanActivationWorkflow,
            PostEventReviewWorkflow]
