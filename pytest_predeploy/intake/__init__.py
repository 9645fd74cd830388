"""Gate 1, intake: upstream approvals, staging parity with the target environment, and the
test data and feature flag refresh."""
