"""Keys on a gate test's own ``item.stash``, in a module that imports nothing of ours: the gate
controller reads them, and every protocol run imports the controller, so this import must stay
cheap (harness.evidence draws charts with the rehearsal's modules, which load pydantic)."""

from __future__ import annotations

from typing import Any

import pytest

#: A gate test's evidence (a harness.evidence.Evidence: tables, figures, charts) for the HTML
#: report and the gate summary.
evidence_key = pytest.StashKey[Any]()
