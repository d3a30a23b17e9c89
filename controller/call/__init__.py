"""One call, from CHANNEL_PARK to the verdict carried out: the dispatcher
routes events to a per-call session, the call flow reads top to bottom and calls
its steps (flow_*), services holds what a flow uses, ends counts call ends."""
