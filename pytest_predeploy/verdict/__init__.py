"""The verdict: the protocol's criteria, declared once, and the judgement of evidence against them
(this run's, or a sealed package's)."""
