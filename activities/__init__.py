"""Every side effect lives here: gateways, directory look-ups, audit writes, documents."""


def all_activities() -> list:
    from activities import (activation, audit, broadcast, bulletin, callout, duty, proposal, publication, relay, reporting,
                            readiness, resources, review, upward, workorder)

    return [audit.append_audit, callout.open_callout, callout.resolve, callout.load_shard, callout.flush,
            callout.stored_answers, callout.record_update, callout.finish, broadcast.play, relay.flush,
            reporting.record, reporting.targets, reporting.remind, reporting.flush, reporting.settle, upward.upward,
            activation.record, activation.resolve, activation.notify, activation.flush,
            review.open_, review.record, review.notify, review.targets, review.flush, review.compile_, review.seal,
            proposal.open_proposal, proposal.record, proposal.flush, proposal.activate,
            *duty.ALL, *publication.ALL, *workorder.ALL, *bulletin.ALL, *resources.ALL, *readiness.ALL]
