"""What a protocol run decided, as the reviewer reads it: the verdict, the package to sign (its
digest and entry count, the sealed copy, or why there is none), the gate cards (with the gates
a Gate-4-only re-check did not run, as the sealing run recorded them), the sign-offs that count
and what the artifacts say (``harness/reviewdata.py``). ``harness/report.py`` renders it into
the HTML report, the reviewer's copy and the GitHub step summary.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from pytest_predeploy.core.artifacts import PACKAGE, RUN_REPORTS
from pytest_predeploy.core.errors import PredeployError
from pytest_predeploy.core.protocol import READINESS_GATE
from pytest_predeploy.core.runstate import load_state
from pytest_predeploy.harness.banner import REVIEW_PAGE, Decision, GateCard, Package, Signature, TestRow, VerdictKind
from pytest_predeploy.harness.gates import ExitStatus
from pytest_predeploy.harness.reviewdata import read_evidence, sealed_manifest

if TYPE_CHECKING:
    from pytest_predeploy.config import ProjectConfig
    from pytest_predeploy.harness.context import RunContext
    from pytest_predeploy.harness.controller import GateController
    from pytest_predeploy.harness.verdict import Verdict


class ProtocolSession(Protocol):
    """The protocol session as the reports read it (the session registers these hooks, so it is
    described here rather than imported)."""

    config: pytest.Config
    context: RunContext
    controller: GateController
    project: ProjectConfig
    report_prefix: str
    reused_package: Any

    @property
    def package_sha256(self) -> str | None: ...

    @property
    def package_note(self) -> str | None: ...

    @property
    def write_problems(self) -> list[str]: ...

    @property
    def verdict(self) -> Verdict | None: ...

    @property
    def seal_pending(self) -> bool: ...

    @property
    def git_commit(self) -> str | None: ...


def which_reports(session: ProtocolSession) -> str:
    """Which report files are this run's and which are the reviewers' copy (a Gate-4-only re-check)."""
    ours = ", ".join(session.report_prefix + name for name in RUN_REPORTS)
    return f"This Gate 4 run's reports: {ours}. The run that produced the package wrote {', '.join(RUN_REPORTS)} (the reviewers' copy, sealed in the package)."


def verdict(session: ProtocolSession, exit_status: int) -> str:
    """The run's verdict line (harness.verdict decides it; the reports only show it)."""
    decided = session.verdict
    if decided is not None and int(decided.status) == exit_status:
        return decided.line
    return f"exit status {exit_status}: not a protocol verdict"


def _kind(session: ProtocolSession, exit_status: int) -> VerdictKind:
    if exit_status == ExitStatus.INTERRUPTED:
        return "interrupted"
    if exit_status == ExitStatus.AWAITING_SIGNOFF:
        return "awaiting"
    if exit_status == ExitStatus.GO and session.verdict is not None and session.verdict.status == ExitStatus.GO:
        return "go"
    if exit_status == ExitStatus.NOT_JUDGED:
        return "partial"
    # NO-GO, and any status we did not plan for (an internal error, nothing collected): never GO.
    return "no-go"


def package_digest(session: ProtocolSession) -> str | None:
    """The sha256 of the package this run sealed, or of the sealed package Gate 4 re-judged."""
    if session.package_sha256:
        return session.package_sha256
    reused = session.reused_package
    return str(reused.sha256) if reused is not None else None


def _seal_pending(session: ProtocolSession) -> bool:
    """This run will seal a package after its reports are written (so its HTML report is the
    copy sealed inside it)."""
    return session.seal_pending and not session.package_sha256


def package_state(session: ProtocolSession, kind: VerdictKind) -> Package:
    """What is to be signed, as this moment knows it (before sealing: the sealed copy)."""
    if session.package_sha256:
        manifest = sealed_manifest(session.context.artifacts / PACKAGE)
        return Package("digest", session.package_sha256, len(manifest.entries) if manifest is not None else None)
    if session.reused_package is not None:
        return Package("digest", str(session.reused_package.sha256), len(session.reused_package.entries))
    if _seal_pending(session):
        return Package("sealed-copy")
    if session.package_note:
        return Package("none", note=session.package_note.removeprefix("package NOT sealed: "))
    if (session.context.artifacts / PACKAGE).exists():
        # An earlier run's package that this run did not re-judge as current (a gate ran after
        # sealing, or Gate 4 found it stale): the page must not read as if it were signable.
        return Package("none", note=f"{PACKAGE} in the artifacts folder was sealed by an earlier run and this run did not find it current: do not sign it")
    if kind == "no-go":
        return Package("none", note="a run seals one only when gates 1-3 pass and Gate 4 runs")
    if kind == "interrupted":
        return Package("none", note="the run was interrupted")
    return Package("none", note="Gate 4 did not run in this run")


def _signatures(session: ProtocolSession, digest: str | None) -> list[Signature]:
    """The sign-offs on the package's digest that count: current and signed with a key the
    signers file lists for that identity and role. None when there is no package or the record
    or the signers file cannot be read (Gate 4 says why; the page only shows who signed)."""
    if not digest:
        return []
    from pytest_predeploy.readiness.signoff import judge_signoffs  # here: only a run with a package to sign needs the signing code

    reused = session.reused_package
    try:
        # Gate 4's own reading: the git record, the committed signers file sealed with the package.
        status = judge_signoffs(
            session.project.base_dir, digest, reused.manifest.signers_sha256 if reused else None, session.project.readiness, None, session.context.release
        )
    except PredeployError:
        return []
    views = [] if status.blocked else status.views
    return [
        Signature(role=v.role, by=v.approver, decision=v.decision, conditions=v.conditions or "", until=f"{v.expires_at:%Y-%m-%d}" if v.expires_at else "")
        for v in views
        if v.verdict == "current" and (v.signature == "verified" or session.project.readiness.allow_unsigned)
    ]


def decision(session: ProtocolSession, exit_status: int, tests: Sequence[TestRow] = ()) -> Decision:
    """What the review page and the GitHub summary say, every text redacted; ``tests`` are the
    rows of the raw test table."""
    redact = session.context.redactor.redact
    project = session.project
    found = read_evidence(session.context.artifacts, project.parity.waivers)
    kind = _kind(session, exit_status)
    package = package_state(session, kind)
    halted: dict[str, int] = {}
    for row in tests:
        if row.outcome == "halted":
            halted[row.gate] = halted.get(row.gate, 0) + 1
    gates = [
        GateCard(
            number=g.number,
            name=g.name,
            status=g.status,
            figures=[redact(f) for f in (_package_figures(g.figures, package) if g.number == READINESS_GATE else g.figures)],
            reason=redact(g.reason),
            advisories=[redact(a) for a in g.advisories],
            pending_roles=list(g.pending_roles),
            root_causes=found.root_causes.get(g.number, []) if g.status == "failed" else [],
            halted_tests=halted.get(str(g.number), 0),
        )
        for g in sorted(session.controller.gates.values(), key=lambda g: g.number)
    ]
    gates = sorted(gates + _sealed_gates(session, {g.number for g in gates}), key=lambda g: g.number)
    digest = package_digest(session)
    signatures = [replace(s, by=redact(s.by), conditions=redact(s.conditions)) for s in _signatures(session, digest)]
    return Decision(
        kind=kind,
        detail=redact(verdict(session, exit_status)),
        release=session.context.release,
        previous_release=session.context.previous_release,
        package=package,
        signatures=signatures,
        pending_roles=session.controller.pending_roles(),
        gates=gates,
        changes=found.changes,
        api_changes=found.api_changes,
        api_note=found.api_note,
        dependencies=found.dependencies,
        dependency_note=found.dependency_note,
        risks=found.risks,
        approvals=found.approvals,
        scanners_not_run=found.scanners_not_run,
        timings=found.timings,
        charts=found.charts,
        tests=list(tests),
        environment={key: str(value) for key, value in environment(session).items()},
        notes=found.notes,
        report_files=which_reports(session) + f" {REVIEW_PAGE} beside the package is the reviewer's copy of this page." if session.report_prefix else "",
    )


def _sealed_gates(session: ProtocolSession, shown: set[int]) -> list[GateCard]:
    """The gates a Gate-4-only run did not run, as the run that sealed the package recorded them
    (that run's state, beside the package): a reviewer of the GO page sees every gate."""
    if session.reused_package is None:
        return []
    state = load_state(session.context.artifacts)
    if state is None or state.release != session.context.release:
        return []
    redact = session.context.redactor.redact
    cards = []
    for key, record in state.gates.items():
        number = key.removeprefix("gate")
        if not number.isdigit() or int(number) in shown:
            continue
        cards.append(
            GateCard(
                number=int(number),
                name=record.name,
                status=record.status,
                figures=[redact(f) for f in record.figures],
                reason=redact(record.reason),
                advisories=[redact(a) for a in record.advisories],
                note=f"as the run that sealed the package recorded them ({state.generated_at:%Y-%m-%d %H:%M} UTC); this run re-judged their sealed evidence",
            )
        )
    return cards


#: Gate 4's figure counts the manifest as it stood when its test ran, before this run's own
#: reports joined it at sealing; the page counts what `predeploy verify` counts.
_INDEXED = re.compile(r"^(\d+) artifacts indexed$")


def _package_figures(figures: list[str], package: Package) -> list[str]:
    shown = []
    for figure in figures:
        found = _INDEXED.match(figure)
        if found and package.state == "digest" and package.entries is not None:
            figure = f"{package.entries} entries in the sealed package's manifest"
        elif found and package.state == "sealed-copy":
            figure = f"{found.group(1)} evidence files indexed; this run's reports join them at sealing"
        shown.append(figure)
    return shown


def environment(session: ProtocolSession) -> dict[str, Any]:
    ctx = session.context
    return {
        "Release": ctx.release,
        "Previous release": ctx.previous_release or "unknown",
        "Commit": session.git_commit or "unknown",
        "Config digest": f"sha256:{session.project.digest}",
        "Environment": ctx.env,
        "Project": session.project.project,
    }
