"""The run journal: which runs touched an artifacts folder, in order, outside anything the
package holds.

Gate 4 run alone must know whether anything ran after the package was sealed. The run state
(``predeploy-run.json``) cannot say so: it is sealed in the package, so restoring the folder
from the package (``unzip -o``) puts the sealing run's word back. The journal is a dotfile, which
the package never holds, and it is only ever appended to: one line when a run starts (the gates
it collected) and one when it ends (their outcomes, and the package it sealed). A package the
journal has no sealing record of, or a run of an earlier gate after it, makes the package stale.

What it does not stop: someone with write access to the folder rewriting the journal itself
(docs/threat-model.md); deleting it makes every sealed package in the folder stale, never GO.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pytest_predeploy.core.fields import utcnow
from pytest_predeploy.core.nesting import json_loads

JOURNAL = ".predeploy-journal.jsonl"
#: A journal line longer than this is not ours: it is skipped (and so is its run).
MAX_LINE = 64 * 1024


@dataclass
class Entry:
    event: str
    run: str
    at: str
    release: str = ""
    gates: dict[str, str] = field(default_factory=dict)
    sealed: str | None = None


def append(artifacts: Path, event: str, run: str, release: str, gates: dict[str, str], sealed: str | None = None) -> None:
    """Append one line (O_APPEND: a concurrent reader sees whole lines)."""
    line = json.dumps({"event": event, "run": run, "at": utcnow().isoformat(), "release": release, "gates": gates, "sealed": sealed}, sort_keys=True)
    fd = os.open(artifacts / JOURNAL, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read(artifacts: Path) -> list[Entry] | None:
    """The journal's entries in order; None when there is none."""
    try:
        raw = (artifacts / JOURNAL).read_bytes()
    except OSError:
        return None
    entries = []
    for line in raw.splitlines():
        if len(line) > MAX_LINE:
            continue
        try:
            data: Any = json_loads(line)
            entries.append(
                Entry(
                    event=str(data["event"]),
                    run=str(data["run"]),
                    at=str(data["at"]),
                    release=str(data.get("release", "")),
                    gates={str(k): str(v) for k, v in dict(data.get("gates") or {}).items()},
                    sealed=data.get("sealed") if isinstance(data.get("sealed"), str) else None,
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # a torn or foreign line: the run it belonged to is not vouched for
    return entries


def _gate_numbers(gates: dict[str, str]) -> list[int]:
    return sorted(int(key.removeprefix("gate")) for key in gates if key.removeprefix("gate").isdigit())


def staleness(artifacts: Path, package_sha256: str, readiness_gate: int) -> list[str]:
    """Why the journal does not vouch for ``package_sha256`` being the latest word on gates before
    ``readiness_gate`` (empty: it does)."""
    entries = read(artifacts)
    if entries is None:
        return [f"the run journal {JOURNAL} is missing from the artifacts folder, so nothing shows what ran after sealing"]
    sealed_at = [i for i, entry in enumerate(entries) if entry.event == "end" and entry.sealed == package_sha256]
    if not sealed_at:
        return [f"the run journal {JOURNAL} has no record of a run sealing this package"]
    problems = []
    for entry in entries[sealed_at[-1] + 1 :]:
        earlier = [n for n in _gate_numbers(entry.gates) if n < readiness_gate]
        if entry.event == "start" and earlier:
            when = _short(entry.at)
            problems.append(f"Gate {', '.join(map(str, earlier))} ran after sealing (a run started at {when})")
    return problems


def _short(stamp: str) -> str:
    try:
        return datetime.fromisoformat(stamp).strftime("%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return stamp
