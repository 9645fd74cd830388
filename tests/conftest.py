"""Shared fixtures of the project's own test suite."""

from __future__ import annotations

pytest_plugins = ["pytester"]
