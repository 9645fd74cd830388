"""Gate 3, the rollback half: the rollback rehearsal (rollback) and operational readiness
(operational: runbooks, on-call, escalation)."""
