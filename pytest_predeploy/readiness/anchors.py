"""Trust anchors: which signers file a sign-off is checked against, taken from outside the evidence.

The signers file says whose key may sign which role. A copy anyone can edit (the working tree,
the copy sealed in the package) would let whoever edits it add themselves. So Gate 4 uses the
file only when the working tree's copy is the one committed at HEAD (a change goes through the
repository's review like any other) and its digest is the one sealed in the package's manifest:
a signer added after sealing never counts for that package; re-seal to use a new list.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pytest_predeploy.readiness.record import committed_file
from pytest_predeploy.readiness.signing import Signers, load_signers


def file_sha256(path: Path) -> str | None:
    """sha256 of the file at ``path``; None when there is none (what the manifest seals)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def anchored_signers(repository: Path, path: Path, sealed_sha256: str | None) -> tuple[Signers | None, list[str]]:
    """The signers file at ``path`` when it is committed, unedited and the one sealed with the
    package; else None and why not (each reason blocks Gate 4: a list nobody reviewed decides
    nothing)."""
    if not path.is_file():
        return None, [
            f"{path}: signers file not found; list who may sign which role there (`predeploy init` writes a template), commit it, and rerun the protocol"
        ]
    committed = committed_file(repository, path)
    if committed is None:
        return None, [
            f"{path}: not committed in {repository} (HEAD): sign-offs are checked against the committed signers file; commit it, then rerun the protocol to re-seal"
        ]
    try:
        working = path.read_bytes()
    except OSError:
        working = None
    if working != committed:
        return None, [
            f"{path} differs from the committed one (HEAD): sign-offs are checked against the signers file as committed and sealed; "
            "revert the edit, or commit it and rerun the protocol to re-seal"
        ]
    digest = hashlib.sha256(committed).hexdigest()
    if sealed_sha256 is None:
        return None, ["the package was sealed without the signers file's digest (an older version, or no signers file then): rerun the protocol to re-seal"]
    if digest != sealed_sha256:
        return None, [
            f"{path.name} changed after sealing (sha256 {digest[:12]}... now, {sealed_sha256[:12]}... sealed): a signer added or changed after "
            "sealing never counts for this package; rerun the protocol to re-seal with the new list"
        ]
    return load_signers(path), []
