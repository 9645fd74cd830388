"""What a reviewer decides from, as plain data, and its short form for the GitHub step summary.

The review page (``harness/reviewpage.py``) and the GitHub step summary render the same
:class:`Decision`, in the same order: the verdict and what is to be signed (release, package
digest, sealed or not), one card per gate with its key figures and, on failure, the reason and
the root-cause excerpt, what changed between the two releases, the accepted risks (every waiver
and upstream approval: who, why, until when), per-service timings, and every test last. This
module knows no pytest and no session: ``harness/decision.py`` fills it in from both and from
the artifacts (``harness/reviewdata.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

VerdictKind = Literal["go", "no-go", "awaiting", "interrupted", "partial"]

#: The words the page leads with, per kind.
HEADLINES: dict[VerdictKind, str] = {
    "go": "GO",
    "no-go": "NO-GO",
    "awaiting": "AWAITING SIGN-OFF",
    "interrupted": "INTERRUPTED",
    "partial": "NOT JUDGED (NOT GO)",
}

#: Statuses whose reason blocks the release and is shown in full on the card.
BLOCKING = ("failed", "interrupted")

#: The reviewer's copy of the HTML report, written beside the package after it is sealed: the
#: copy sealed inside the package cannot name the digest of the zip that holds it.
REVIEW_PAGE = "PRE-DEPLOYMENT-REVIEW.html"


@dataclass(frozen=True)
class RootCause:
    """Why a service failed, in the words of its own output (a traceback, a log tail)."""

    what: str  # e.g. "worker: deployment of v1.2 failed"
    excerpt: str
    source: str = ""  # the artifact it was read from, relative to the artifacts folder


@dataclass(frozen=True)
class GateCard:
    """One gate as the reviewer sees it."""

    number: int
    name: str
    status: str
    figures: Sequence[str] = ()
    reason: str = ""
    advisories: Sequence[str] = ()
    pending_roles: Sequence[str] = ()
    root_causes: Sequence[RootCause] = ()
    #: Tests of this gate that did not run because an earlier gate halted the protocol.
    halted_tests: int = 0
    #: Where the outcome comes from when not from this run (the run that sealed the package).
    note: str = ""


@dataclass(frozen=True)
class Signature:
    """One recorded sign-off that counts."""

    role: str
    by: str
    decision: str
    conditions: str = ""
    until: str = ""


@dataclass(frozen=True)
class Package:
    """What is to be signed, stated truthfully.

    ``state``: ``digest`` (this page names the package's sha256 and its manifest's entry count,
    as ``predeploy verify`` prints them), ``sealed-copy`` (this page is the copy sealed inside
    the package, written before the zip existed, so it cannot name its digest), ``none`` (no
    package: ``note`` says why)."""

    state: Literal["digest", "sealed-copy", "none"]
    sha256: str | None = None
    entries: int | None = None
    note: str = ""


@dataclass(frozen=True)
class Risk:
    """An accepted risk: a drift or security waiver. Every field is shown; nothing is a count."""

    kind: str  # "drift waiver" | "security waiver"
    id: str
    covers: str  # what it waives (a config path, findings)
    owner: str
    why: str
    until: str


@dataclass(frozen=True)
class UpstreamApproval:
    """One upstream approval (Protocol 4, Protocol 9, security waivers ...)."""

    title: str
    status: str
    by: str
    at: str
    until: str
    waivers: Sequence[str] = ()


@dataclass(frozen=True)
class BuildChange:
    """What a service runs now and what the candidate replaces it with."""

    service: str
    previous: str
    candidate: str
    same_code: bool


@dataclass(frozen=True)
class ServiceTiming:
    service: str
    deploy: float | None = None
    rollback: float | None = None
    recovery: float | None = None
    target: float | None = None


@dataclass(frozen=True)
class TestRow:
    """One pytest test, for the raw table at the end."""

    __test__ = False  # not a pytest test class, despite the name

    gate: str
    name: str
    requirement: str
    outcome: str
    seconds: float
    message: str = ""


@dataclass(frozen=True)
class Decision:
    """Everything the review page and the GitHub summary say. ``detail`` is the verdict line
    (e.g. ``NO-GO: Gate 3 (Rollback & Security) failed``)."""

    kind: VerdictKind
    detail: str
    release: str
    previous_release: str | None = None
    package: Package = Package("none")
    signatures: Sequence[Signature] = ()
    pending_roles: Sequence[str] = ()
    gates: Sequence[GateCard] = field(default_factory=tuple)
    changes: Sequence[BuildChange] = ()
    #: (service, kind, operation, what changed, waiver) rows of the API contract comparison.
    api_changes: Sequence[tuple[str, str, str, str, str]] = ()
    api_note: str = ""
    dependencies: Sequence[str] = ()
    dependency_note: str = ""
    risks: Sequence[Risk] = ()
    approvals: Sequence[UpstreamApproval] = ()
    scanners_not_run: Sequence[str] = ()
    timings: Sequence[ServiceTiming] = ()
    #: (title, inline SVG) pairs: deploy, recovery and observability charts.
    charts: Sequence[tuple[str, str]] = ()
    tests: Sequence[TestRow] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    #: Notes a section could not be filled (an artifact unreadable): said, never silently empty.
    notes: Sequence[str] = ()
    #: Which report files are whose, on a Gate-4-only re-check (empty otherwise).
    report_files: str = ""


def signed_line(decision: Decision) -> str:
    """Who signed, and who still must; empty when nobody signed (the verdict line already names
    the roles awaited, and "nobody yet" on a NO-GO would suggest a signature is expected)."""
    if not decision.signatures:
        return ""
    signed = ", ".join(
        f"{s.by} ({s.role}, {s.decision}{f'; conditions: {s.conditions}' if s.conditions else ''}{f'; until {s.until}' if s.until else ''})"
        for s in decision.signatures
    )
    pending = f"; still awaiting: {', '.join(decision.pending_roles)}" if decision.pending_roles else ""
    return f"Signed by: {signed}{pending}"


def package_line(package: Package) -> str:
    """The package as one sentence (the page's and the summary's)."""
    if package.state == "digest":
        entries = f", {package.entries} entries in its manifest" if package.entries is not None else ""
        return f"PRE-DEPLOYMENT-PACKAGE.zip sha256 {package.sha256}{entries}"
    if package.state == "sealed-copy":
        return (
            "This page is the copy sealed inside PRE-DEPLOYMENT-PACKAGE.zip, written before the zip existed: a file cannot name the "
            f"digest of the zip that holds it. {REVIEW_PAGE} beside the package and `predeploy verify PRE-DEPLOYMENT-PACKAGE.zip` name it."
        )
    return f"No package sealed: {package.note}" if package.note else "No package sealed."


def without_excerpts(reason: str, causes: Sequence[RootCause]) -> str:
    """``reason`` without the lines a root-cause excerpt shows (a gate's reason quotes the
    service's log tail too): once is enough."""
    quoted = {line.strip() for cause in causes for line in cause.excerpt.splitlines() if line.strip()}
    return "\n".join(line for line in reason.splitlines() if line.strip() not in quoted)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def _excerpt(text: str, lines: int = 12) -> str:
    kept = text.strip("\n").splitlines()
    return "\n".join(kept[-lines:])


def summary_markdown(decision: Decision) -> str:
    """The GitHub step summary: the review page, shorter (no charts, no test table)."""
    lines = [f"## {HEADLINES[decision.kind]}: release {decision.release}", "", f"**{decision.detail}**", "", package_line(decision.package), ""]
    signed = signed_line(decision)
    if signed:
        lines += [signed, ""]
    lines += ["| Gate | Name | Status | Key figures | Blocking reasons and notes |", "|---|---|---|---|---|"]
    for gate in sorted(decision.gates, key=lambda g: g.number):
        notes: list[str] = []
        if gate.status in BLOCKING and gate.reason:
            notes.append(without_excerpts(gate.reason, gate.root_causes))
        if gate.status == "halted":
            notes.append(f"{gate.reason} ({gate.halted_tests} tests not run)" if gate.halted_tests else gate.reason)
        if gate.pending_roles:
            notes.append("awaiting sign-off from: " + ", ".join(gate.pending_roles))
        notes.extend("advisory: " + a for a in gate.advisories)
        lines.append(f"| {gate.number} | {_cell(gate.name)} | {gate.status.upper()} | {_cell('; '.join(gate.figures))} | {_cell(chr(10).join(notes))} |")
    causes = [cause for gate in decision.gates for cause in gate.root_causes]
    for cause in causes:
        lines += ["", f"**Root cause: {cause.what}** ({cause.source})", "", "```", _excerpt(cause.excerpt), "```"]
    if decision.changes:
        lines += ["", "### What changed", "", "| Service | Previous | Candidate |", "|---|---|---|"]
        lines += [f"| {_cell(c.service)} | {_cell(c.previous)} | {_cell(c.candidate)}{' (SAME CODE)' if c.same_code else ''} |" for c in decision.changes]
    if decision.risks or decision.approvals:
        lines += ["", "### Accepted risks and approvals", "", "| Kind | Id | Covers | Owner | Why | Until |", "|---|---|---|---|---|---|"]
        lines += [f"| {r.kind} | {_cell(r.id)} | {_cell(r.covers)} | {_cell(r.owner)} | {_cell(r.why)} | {_cell(r.until)} |" for r in decision.risks]
        lines += [
            f"| upstream approval | {_cell(a.title)} | {a.status}{': waivers ' + ', '.join(a.waivers) if a.waivers else ''} | {_cell(a.by)} | approved {_cell(a.at)} | {_cell(a.until)} |"
            for a in decision.approvals
        ]
    if decision.scanners_not_run:
        lines += ["", *(f"- scanner not run: {_cell(s)}" for s in decision.scanners_not_run)]
    if decision.timings:
        lines += ["", "### Timings (seconds)", "", "| Service | Deploy | Rollback switch | Recovery | Target |", "|---|---|---|---|---|"]
        lines += [
            f"| {_cell(t.service)} | {_seconds(t.deploy)} | {_seconds(t.rollback)} | {_seconds(t.recovery)} | {_seconds(t.target)} |" for t in decision.timings
        ]
    return "\n".join(lines) + "\n"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
