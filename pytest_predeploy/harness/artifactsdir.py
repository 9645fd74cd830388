"""The artifacts folder's ownership and history: the tool writes only in a folder it created,
and moves or deletes only what its runs wrote.

Why a marker: ``--predeploy-artifacts`` used to take any folder, and a run from Gate 1 moved
everything in it into ``history/`` (the sixth run deleted it): ``--predeploy-artifacts=.`` moved a
whole repository, ``.git`` included (issue 30, item 1). A folder the tool creates (or finds empty)
gets :data:`MARKER`; a non-empty folder without it is refused before anything runs. A folder an
older version filled (its lock file or run state, and only names this tool writes) is adopted.

Inside its own folder, what a run wrote is moved to ``history/<UTC stamp>/`` when the next run
starts at Gate 1; what is older than the folder's marker (a file moved in keeps its time) and
dotfiles the tool does not write are left where they are and named. Rotation deletes only the
history runs the tool made, the last :data:`HISTORY_KEEP` kept.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core.errors import PredeployError
from pytest_predeploy.core.fields import utcnow
from pytest_predeploy.verdict.journal import JOURNAL

#: Written by the tool into every artifacts folder it creates or adopts.
MARKER = ".predeploy-artifacts"
#: Written into every ``history/<stamp>/`` folder a run's files were moved to.
HISTORY_MARKER = ".predeploy-history"
LOCK_FILE = ".predeploy.lock"
HISTORY_DIR = "history"
#: Files of the tool's that stay where they are across runs (the verdict's journal spans them).
_STAYING = (LOCK_FILE, MARKER, HISTORY_DIR, JOURNAL)
HISTORY_KEEP = 5
#: How a history run folder is named (also by versions before the marker).
_STAMP = re.compile(r"^\d{8}T\d{6}\.\d{6}Z$")
#: A temporary file of an atomic write interrupted before its rename (core.artifacts).
_TEMPORARY = re.compile(r"^\..+\.tmp$")
#: How many names a message lists before "and N more".
_SHOWN = 5


def _tool_names() -> set[str]:
    """Top-level names only this tool writes in an artifacts folder."""
    known = {artifact.name for artifact in names.ARTIFACTS} | {names.PACKAGE, names.TRANSCRIPTS_DIR, *_STAYING}
    known |= {"gate4-" + name for name in names.RUN_REPORTS}
    return known


def _listing(paths: list[str]) -> str:
    shown = ", ".join(sorted(paths)[:_SHOWN])
    return shown if len(paths) <= _SHOWN else f"{shown} and {len(paths) - _SHOWN} more"


def claim(folder: Path) -> None:
    """Create ``folder`` and mark it as the tool's, or check that it is the tool's already.

    PredeployError (a usage error) when it exists and holds anything this tool did not write:
    nothing in it is touched then."""
    marker = folder / MARKER
    if marker.is_file():
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        entries = os.listdir(folder)
    except FileExistsError:
        raise PredeployError(f"the artifacts folder {folder} is a file, not a folder; give --predeploy-artifacts a new or empty folder") from None
    except NotADirectoryError:
        raise PredeployError(f"cannot create the artifacts folder {folder}: a part of its path is a file") from None
    except OSError as exc:
        raise PredeployError(f"cannot create the artifacts folder {folder}: {exc.strerror}") from None
    known = _tool_names()
    foreign = [name for name in entries if name not in known and not _TEMPORARY.match(name)]
    if entries and LOCK_FILE not in entries and names.RUN_STATE not in entries and not all(_empty_folder(folder / name) for name in entries):
        # Names alone prove little (a folder of one's own may hold a "history"): an older
        # version's folder also holds the lock file or the run state every run of it wrote.
        # Empty folders hold nothing that could be lost.
        foreign = entries
    if foreign:
        raise PredeployError(
            f"the artifacts folder {folder} is not empty and was not created by pytest-predeploy (it holds {_listing(foreign)}); "
            "a run moves the previous run's files out of its folder, so it uses only a new or empty one: "
            "give --predeploy-artifacts another folder, or empty this one"
        )
    try:
        marker.write_text(json.dumps({"created_by": "pytest-predeploy", "created_at": utcnow().isoformat()}) + "\n", encoding="utf-8")
        if entries:
            # An older version's folder: every file in it is a run's, so none counts as older.
            os.utime(marker, (0, 0))
    except OSError as exc:
        raise PredeployError(
            f"the artifacts folder {folder} is not writable ({exc.strerror}); make it writable or give this run another --predeploy-artifacts folder"
        ) from None


def _empty_folder(path: Path) -> bool:
    try:
        if not path.is_dir() or path.is_symlink():
            return False
        with os.scandir(path) as inside:
            return not any(inside)
    except OSError:
        return False


def archive_previous_run(folder: Path) -> list[str]:
    """Move the previous run's files to ``history/<stamp>/`` and delete the oldest history runs
    beyond :data:`HISTORY_KEEP`; returns one line per thing left alone (for the terminal)."""
    try:
        owned_since = (folder / MARKER).stat().st_mtime
    except OSError:
        # Not claimed (claim() refuses such a folder first): touch nothing.
        return [f"[ARTIFACTS] {folder}: no {MARKER} marker; nothing moved"]
    moved: list[Path] = []
    left: list[str] = []
    with os.scandir(folder) as listing:
        entries = list(listing)
    for entry in entries:
        if entry.name in _STAYING:
            continue
        if entry.name.startswith(".") and not _TEMPORARY.match(entry.name):
            left.append(entry.name)
        elif entry.stat(follow_symlinks=False).st_mtime < owned_since:
            left.append(entry.name)
        else:
            moved.append(Path(entry.path))
    notes = []
    if left:
        notes.append(f"[ARTIFACTS] left in place, not written by a run of pytest-predeploy: {_listing(left)} (in {folder})")
    if moved:
        target = folder / HISTORY_DIR / utcnow().strftime("%Y%m%dT%H%M%S.%fZ")
        target.mkdir(parents=True)
        (target / HISTORY_MARKER).write_text("moved here by pytest-predeploy at the start of the next run\n", encoding="utf-8")
        for path in moved:
            os.replace(path, target / path.name)
    notes.extend(_rotate(folder / HISTORY_DIR))
    return notes


def _rotate(history: Path) -> list[str]:
    if not history.is_dir() or history.is_symlink():
        return []
    runs, others = [], []
    with os.scandir(history) as listing:
        entries = list(listing)
    for entry in entries:
        if _STAMP.match(entry.name) and entry.is_dir(follow_symlinks=False):
            runs.append(Path(entry.path))
        else:
            others.append(entry.name)
    for old in sorted(runs)[:-HISTORY_KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    if others:
        return [f"[ARTIFACTS] left in place, not a run's history: {_listing(others)} (in {history})"]
    return []
