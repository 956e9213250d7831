"""Every side effect lives here: gateways, directory look-ups, audit writes, documents."""


def all_activities() -> list:
    from activities import audit, callout, duty, reporting

    return [audit.append_audit, callout.open_callout, callout.resolve, callout.load_shard, callout.flush,
            callout.record_update, callout.finish,
            reporting.record, reporting.targets, reporting.remind, reporting.flush, *duty.ALL]
