"""The pytest layer: the protocol session, the gate controller, the step fixtures, the run
context, the reports and the evidence shown in them."""
