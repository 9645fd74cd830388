"""The sign-off record: an append-only history in git, on a ref of its own.

Each sign-off is one commit on the branch ``predeploy/signoffs`` adding one file,
``<package sha256>/<envelope sha256>.json`` (the DSSE envelope as ``predeploy approve`` made it).
The record is made with git's plumbing (hash-object, mktree, commit-tree, update-ref with the old
value), so it never touches the user's branches, index or working tree, and two reviewers signing
at once cannot lose each other's commit (the second update is refused and retried).

Gate 4 reads the record from history, never from a file an edit can reorder: the order of the
sign-offs is the order of the commits, every envelope ever added counts as it was added (so a
no-go stands until its signer records a go), and must still be in the ref's tree with the bytes
it was added with. A commit that deletes or changes one, and a ref that no longer contains a
commit it once pointed at (a reset or a rewritten history, seen in the ref's log), are reported
as problems that block. What git cannot see locally (a ref force-pushed on the
remote, a deleted ref log) is what a protected remote ref refuses (docs/threat-model.md).
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from pytest_predeploy.core.errors import PredeployError
from pytest_predeploy.core.git import run_git

#: The ref sign-offs are committed to; push it with `git push origin predeploy/signoffs`. A branch
#: (never checked out, its tree holds only envelopes) rather than a ref of its own: hosting
#: platforms protect branches (no force push, no deletion), not other refs.
REF = "refs/heads/predeploy/signoffs"
#: The branch's short name, as `git push` and the docs say it.
BRANCH = REF.removeprefix("refs/heads/")
#: Where `git fetch origin` leaves the team's record; a new sign-off builds on it too.
REMOTE = "refs/remotes/origin/" + BRANCH
#: A recorded entry's path: the package digest's folder, the envelope's own digest as its name.
_ENTRY = re.compile(r"^(?P<package>[0-9a-f]{64})/(?P<digest>[0-9a-f]{64})\.json$")
_ZERO = "0" * 40
#: An envelope is ~1 KiB; a bigger blob in the record is not one of ours.
MAX_ENTRY_BYTES = 256 * 1024
_TIMEOUT = 60


class RecordError(PredeployError):
    """The record cannot be read or written (no repository, git failed); the message says what to do."""


@dataclass(frozen=True)
class RecordEntry:
    """One sign-off as the record holds it."""

    commit: str
    path: str
    package_sha256: str
    content: bytes


@dataclass
class RecordReading:
    """The sign-offs of the record in the order they were committed, and what was removed."""

    repository: Path
    tip: str | None
    entries: list[RecordEntry] = field(default_factory=list)
    #: Removals, changes and rewrites: each blocks Gate 4 (a no-go may have been taken away).
    problems: list[str] = field(default_factory=list)


def _git(repository: Path, *args: str, input: bytes | None = None, env: dict[str, str] | None = None, check: bool = True) -> bytes:
    done = run_git(repository, *args, input=input, env=env, timeout=_TIMEOUT)
    if done.missing:
        raise RecordError("git is not installed: sign-offs are recorded in git (install git)")
    if done.timed_out:
        raise RecordError(f"{repository}: `git {args[0]}` did not finish in {_TIMEOUT}s")
    if done.returncode is None:
        raise RecordError(f"{repository}: {done.problem}")
    if check and done.returncode != 0:
        message = done.stderr.strip().splitlines()
        raise RecordError(f"{repository}: `git {' '.join(args[:2])}` failed: {message[-1] if message else f'exit status {done.returncode}'}")
    return done.output


def find_repository(start: Path) -> Path | None:
    """The top of the git work tree holding ``start``; None outside one (or without git)."""
    done = run_git(start, "rev-parse", "--show-toplevel", timeout=_TIMEOUT)
    return Path(done.stdout.strip()) if done.ok and done.stdout.strip() else None


def require_repository(start: Path) -> Path:
    repository = find_repository(start)
    if repository is None:
        raise RecordError(
            f"{start.resolve()} is not in a git repository: sign-offs are recorded in git ({REF}), so that none can be removed "
            "or reordered unseen; run the protocol from the project's repository (or `git init` it and commit the signers file)"
        )
    return repository


def _tip(repository: Path) -> str | None:
    out = _git(repository, "rev-parse", "-q", "--verify", f"{REF}^{{commit}}", check=False).decode().strip()
    return out or None


def _person(identity: str) -> dict[str, str]:
    """Author and committer of a sign-off commit: the signer, so `git log` shows who signed (the
    signature in the envelope is what proves it; git needs no user.name configured for this)."""
    name = re.sub(r"[<>\n]", "", identity).strip() or "predeploy"
    email = name if "@" in name else f"{re.sub(r'[^A-Za-z0-9._-]', '-', name)}@predeploy.invalid"
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }


def _parents(repository: Path, tip: str | None) -> list[str]:
    """What a new sign-off commit builds on: the local record and, when `git fetch` brought
    sign-offs the local record lacks, the team's (origin's) too, so the push is a fast-forward."""
    remote = _git(repository, "rev-parse", "-q", "--verify", f"{REMOTE}^{{commit}}", check=False).decode().strip() or None
    if remote is None or remote == tip or (tip is not None and _is_ancestor(repository, remote, tip)):
        return [tip] if tip else []
    if tip is None or _is_ancestor(repository, tip, remote):
        return [remote]
    return [tip, remote]


def _listing(repository: Path, tree: str) -> dict[str, str]:
    """One level of ``tree``: name -> ``mode type oid``."""
    entries = {}
    for entry in _git(repository, "ls-tree", "-z", tree).split(b"\0"):
        if entry:
            meta, name = entry.decode().split("\t", 1)
            entries[name] = meta
    return entries


def _mktree(repository: Path, entries: dict[str, str]) -> str:
    listing = "".join(f"{meta}\t{name}\n" for name, meta in sorted(entries.items()))
    return _git(repository, "mktree", input=listing.encode()).decode().strip()


def _tree(repository: Path, parents: list[str], folder: str, file: str, blob: str) -> str:
    """The union of the parents' trees (entries are named by their digest, so the same name is the
    same envelope) plus the new entry. Only the folders that differ between the parents, and the
    package's own, are rebuilt: the rest keep their tree objects."""
    root: dict[str, str] = {}
    differing: dict[str, list[str]] = {}
    for parent in parents:
        for name, meta in _listing(repository, parent).items():
            if name in root and root[name] != meta:
                differing.setdefault(name, [root[name]]).append(meta)
            root.setdefault(name, meta)
    rebuild = {**differing, folder: differing.get(folder) or ([root[folder]] if folder in root else [])}
    for name, metas in rebuild.items():
        files: dict[str, str] = {}
        for meta in metas:
            for child, child_meta in _listing(repository, meta.split()[2]).items():
                files.setdefault(child, child_meta)
        if name == folder:
            files[file] = f"100644 blob {blob}"
        root[name] = f"040000 tree {_mktree(repository, files)}"
    return _mktree(repository, root)


def append(repository: Path, package_sha256: str, content: bytes, signer: str, message: str, attempts: int = 30) -> str:
    """Commit ``content`` (one envelope) as ``<package_sha256>/<its sha256>.json`` on the record;
    the new commit. The ref moves only from the tip this commit was made on (compare-and-swap): a
    concurrent sign-off makes the update fail, and it is made again on the new tip."""
    file = f"{hashlib.sha256(content).hexdigest()}.json"
    blob = _git(repository, "hash-object", "-w", "--stdin", input=content).decode().strip()
    for _ in range(attempts):
        tip = _tip(repository)
        parents = _parents(repository, tip)
        tree = _tree(repository, parents, package_sha256, file, blob)
        flags = [flag for parent in parents for flag in ("-p", parent)]
        commit = _git(repository, "commit-tree", tree, *flags, "-m", message, env=_person(signer)).decode().strip()
        # The old value makes this a compare-and-swap: refused when another sign-off moved the tip.
        if _succeeds(repository, "update-ref", "--create-reflog", "-m", "predeploy approve", REF, commit, tip or _ZERO):
            return commit
        time.sleep(random.uniform(0.01, 0.1))  # another sign-off holds or moved the ref: retry apart
    raise RecordError(f"{repository}: {REF} kept moving while this sign-off was recorded ({attempts} attempts); try again")


def _reflog(repository: Path) -> list[str]:
    """Every commit the ref has pointed at on this machine, oldest first (empty without a log)."""
    out = _git(repository, "reflog", "show", "--format=%H", REF, "--", check=False).decode().split()
    return list(reversed(out))


def _blobs(repository: Path, oids: list[str]) -> dict[str, bytes]:
    """The content of each blob of at most MAX_ENTRY_BYTES, read in one `git cat-file --batch`."""
    if not oids:
        return {}
    sizes = {}
    for line in _git(repository, "cat-file", "--batch-check", input="\n".join(oids).encode() + b"\n").decode().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "blob" and int(parts[2]) <= MAX_ENTRY_BYTES:
            sizes[parts[0]] = int(parts[2])
    wanted = [oid for oid in oids if oid in sizes]
    out = _git(repository, "cat-file", "--batch", input="\n".join(wanted).encode() + b"\n") if wanted else b""
    found, at = {}, 0
    for oid in wanted:
        header_end = out.index(b"\n", at)
        start = header_end + 1
        found[oid] = out[start : start + sizes[oid]]
        at = start + sizes[oid] + 1
    return found


def read(repository: Path) -> RecordReading:
    """The whole record: every sign-off in commit order, and every removal, change or rewrite."""
    tip = _tip(repository)
    reading = RecordReading(repository, tip)
    history = set(_git(repository, "rev-list", tip).decode().split()) if tip else set()
    for old in _reflog(repository):
        if old not in history:
            reading.problems.append(
                f"the sign-off record was rewritten: {REF} once pointed at {old[:12]}, which its history no longer holds "
                "(a reset or a rewritten history removes sign-offs; restore it with `git update-ref` from the ref's log, `git reflog show "
                f"{REF}`)"
            )
            break
    if tip is None:
        return reading
    # Every file ever added, in commit order: the first commit adding it fixes its place.
    added: dict[str, tuple[str, str]] = {}
    removed: set[str] = set()
    log = _git(
        repository, "log", "--reverse", "--topo-order", "--diff-merges=first-parent", "--no-renames", "--raw", "--no-abbrev", "-z", "--format=%x01%H", tip
    ).decode()
    for chunk in log.split("\x01")[1:]:
        commit, _, raw = chunk.partition("\0")
        fields = raw.strip("\n\0").split("\0")
        for meta, path in zip(fields[0::2], fields[1::2], strict=False):
            parts = meta.lstrip(":\n").split()
            if len(parts) < 5:
                continue
            new_blob, status = parts[3], parts[4]
            if status.startswith("A") and path not in added:
                added[path] = (commit.strip(), new_blob)
            elif path in added and status[0] in "DM":
                what = "deleted" if status[0] == "D" else "changed"
                reading.problems.append(f"{path} was {what} by commit {commit.strip()[:12]}: removed from the sign-off record")
                removed.add(path)
    present = {}
    for line in _git(repository, "ls-tree", "-r", "-z", tip).split(b"\0"):
        if line:
            meta, path = line.decode().split("\t", 1)
            present[path] = meta.split()[2]
    contents = _blobs(repository, [blob for _, blob in added.values()])
    for path, (commit, blob) in added.items():
        if present.get(path) != blob and path not in removed:
            reading.problems.append(f"{path} (added by {commit[:12]}) is missing from {REF}: removed from the sign-off record")
        # A removed sign-off still counts as it was added (history keeps its bytes): taking a
        # no-go out of the tree does not take it out of the verdict.
        match = _ENTRY.match(path)
        content = contents.get(blob)
        if match is None or content is None or hashlib.sha256(content).hexdigest() != match["digest"]:
            reading.problems.append(f"{path} (commit {commit[:12]}) is not a sign-off recorded by `predeploy approve` (its name is not its digest)")
            continue
        reading.entries.append(RecordEntry(commit, path, match["package"], content))
    return reading


def _succeeds(repository: Path, *args: str) -> bool:
    return run_git(repository, *args, timeout=_TIMEOUT).ok


def _is_ancestor(repository: Path, old: str, tip: str) -> bool:
    return _succeeds(repository, "merge-base", "--is-ancestor", old, tip)


def committed_file(repository: Path, path: Path) -> bytes | None:
    """``path`` as committed at HEAD; None when HEAD does not hold it."""
    try:
        relative = path.resolve().relative_to(repository.resolve())
    except ValueError:
        return None
    done = run_git(repository, "show", f"HEAD:{relative.as_posix()}", timeout=_TIMEOUT)
    return done.output if done.ok else None
