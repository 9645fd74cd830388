"""The ``predeploy`` command (being built)."""

from __future__ import annotations


def main() -> int:
    return 0
