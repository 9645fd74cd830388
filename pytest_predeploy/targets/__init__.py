"""Staging targets: where the rehearsal deploys and rolls back. ``local`` is the embedded local
target (processes on this machine)."""
