"""Live checks: every answer tried against the real world before anything changes.

Each check here takes the answers (and the secrets they need), asks the outside system the
answer names — a registry, the managed database, the directory, a URL, the name service —
and returns a :class:`~installer.live.result.LiveResult` with pass, warn or fail, what was
measured, what is required and a one-line hint. A check never raises for something the
world did: an unreachable host is "could not reach X (DNS: ...)", not a traceback.

:func:`installer.live.run.run_live_checks` runs the set in parallel, each with its own
timeout, and answers within :data:`installer.live.run.DEADLINE_SECONDS` even on a network
that drops every packet.

The modules use plain dataclasses; registering the checks in the prerequisite check table
(``check --answers``, ``apply``, the wizard) is done by the check table's owner.
"""
