"""pytest-predeploy: a release engineer's pre-deployment protocol (Protocol 10) as pytest gates."""

from __future__ import annotations

__version__ = "0.1.0"
