"""Gate 2: the deployment rehearsal (deploy), smoke and acceptance tests (smoke) and the
observability baseline (observability)."""
