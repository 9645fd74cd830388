"""The review page: a :class:`~pytest_predeploy.harness.banner.Decision` as static HTML, in the
order a reviewer decides in (modelled on a canary report or a deployment review page):

1. the verdict and what is to be signed: release, package digest and entry count, sealed or not;
2. one card per gate: key figures; on failure the reason and the root-cause excerpt (the failing
   service's own traceback or log tail); a halted gate in one line;
3. what changed between the previous release and the candidate (build identities, dependencies);
4. the accepted risks: every waiver and upstream approval with who, why and until when, and the
   scanners that could not run;
5. per-service timings and the charts (inline SVG);
6. last, collapsed: every test, and the environment.

It needs no JavaScript and loads nothing: the page is placed inside pytest-html's report, whose
own chrome (filters, counts, an empty "Summary" heading, the JavaScript-rendered table) is
hidden by the style below or folded into the last section by a small optional script.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from pytest_predeploy.harness.banner import BLOCKING, HEADLINES, Decision, GateCard, RootCause, package_line, signed_line, without_excerpts

#: Where the page starts and ends inside pytest-html's file (re-rendered after sealing).
BEGIN = "<!-- predeploy-review -->"
END = "<!-- /predeploy-review -->"

COLOURS = {  # (background, border) by verdict: green only for GO, a partial run grey
    "go": ("#dafbe1", "#1a7f37"),
    "no-go": ("#ffebe9", "#cf222e"),
    "awaiting": ("#fff8c5", "#9a6700"),
    "interrupted": ("#ffebe9", "#cf222e"),
    "partial": ("#f6f8fa", "#8c959f"),
}

STATUS_COLOURS = {
    "passed": "#1a7f37",
    "failed": "#cf222e",
    "halted": "#6e7781",
    "interrupted": "#cf222e",
    "awaiting sign-off": "#9a6700",
    "not run": "#6e7781",
}

_STYLE = """<style>
#predeploy-review{font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1f2328;max-width:1180px}
#predeploy-review h2{font-size:17px;margin:18px 0 6px;border-bottom:1px solid #d0d7de;padding-bottom:3px}
#predeploy-review table{border-collapse:collapse;margin:4px 0;font-size:13px}
#predeploy-review td,#predeploy-review th{border:1px solid #d0d7de;padding:3px 7px;text-align:left;vertical-align:top}
#predeploy-review th{background:#f6f8fa}
#predeploy-review code,#predeploy-review pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
#predeploy-review pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;border:1px solid #d0d7de;border-radius:4px;padding:6px 8px;margin:4px 0}
.predeploy-verdict{border:2px solid;border-radius:6px;padding:10px 16px}
.predeploy-verdict h1{margin:0 0 4px;font-size:26px}
.predeploy-verdict p{margin:2px 0}
.predeploy-cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:8px}
.predeploy-card{border:1px solid #d0d7de;border-left:6px solid;border-radius:4px;padding:6px 10px}
.predeploy-card-wide{grid-column:1/-1}
.predeploy-card-head{display:flex;justify-content:space-between;font-weight:600}
.predeploy-card ul{margin:4px 0;padding-left:18px}
.predeploy-card p{margin:4px 0}
.predeploy-advisory{color:#9a6700}
.predeploy-charts{display:flex;flex-wrap:wrap;gap:4px 24px}
.predeploy-charts figure{margin:4px 0}.predeploy-charts figcaption{font-size:12px;color:#57606a}
#predeploy-review details{margin:6px 0}#predeploy-review summary{cursor:pointer;font-weight:600}
#predeploy-review details.predeploy-advisory summary{font-weight:normal}
.predeploy-note{color:#57606a}
#predeploy-risks td:nth-child(2),#predeploy-risks td:nth-child(6),#predeploy-approvals td{white-space:nowrap}
#environment-header,#environment,.summary__data>h2,.summary__data>.run-count,.summary__data>p.filter,.summary__reload,.summary__spacer,.summary .controls{display:none}
</style>"""

# Optional: puts the page first in <body>, and folds pytest-html's JavaScript-rendered table (per-
# test logs) into the last section. Without JavaScript the page reads the same.
_PLACE = (
    "<script>(function(){var r=document.getElementById('predeploy-review');"
    "if(r&&document.body){document.body.insertBefore(r,document.body.firstChild);}"
    "document.addEventListener('DOMContentLoaded',function(){var d=document.getElementById('predeploy-pytest-html');"
    "['title','results-table'].forEach(function(id){var e=document.getElementById(id);"
    "if(e&&d){d.hidden=false;d.appendChild(e);}});});})();</script>"
)


PACKAGE_LABELS = {"go": "Signed package", "awaiting": "Package to sign"}


def _e(text: object) -> str:
    return html.escape(str(text))


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], attrs: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict(decision: Decision) -> str:
    background, border = COLOURS[decision.kind]
    package = decision.package
    digest = f" data-sha256='{_e(package.sha256)}'" if package.sha256 else ""
    entries = f" data-entries='{package.entries}'" if package.entries is not None else ""
    if package.state == "digest":
        count = f" &middot; <span id='predeploy-package-entries'>{package.entries}</span> entries" if package.entries is not None else ""
        what = (
            f"<strong>{PACKAGE_LABELS.get(decision.kind, 'Package')}:</strong> PRE-DEPLOYMENT-PACKAGE.zip &middot; "
            f"sha256 <code id='predeploy-package-sha256'><strong>{_e(package.sha256)}</strong></code>"
            f"{count} <span class='predeploy-note'>(as <code>predeploy verify</code> prints them)</span>"
        )
        if decision.pending_roles:
            what += (
                "<br><span class='predeploy-note'>To sign: <code>predeploy approve PRE-DEPLOYMENT-PACKAGE.zip --role ROLE --key YOUR_ED25519_KEY "
                "--decision go|no-go [--conditions TEXT]</code>, then re-run Gate 4</span>"
            )
    else:
        what = _e(package_line(package))
    signed = signed_line(decision)
    previous = f" &middot; replaces {_e(decision.previous_release)}" if decision.previous_release else ""
    return (
        f"<div id='predeploy-banner' class='predeploy-verdict predeploy-verdict-{decision.kind}' style='background:{background};border-color:{border}'>"
        f"<h1 id='predeploy-banner-verdict'>{HEADLINES[decision.kind]} &middot; release {_e(decision.release)}</h1>"
        f"<p id='predeploy-banner-detail'><strong>{_e(decision.detail)}</strong>{previous}</p>"
        f"<p id='predeploy-package' data-state='{package.state}'{digest}{entries}>{what}</p>"
        + (f"<p id='predeploy-banner-signed'>{_e(signed)}</p>" if signed else "")
        + "</div>"
    )


def _cause(cause: RootCause) -> str:
    source = f" <span class='predeploy-note'>({_e(cause.source)})</span>" if cause.source else ""
    return f"<p><strong>Root cause: {_e(cause.what)}</strong>{source}</p><pre class='predeploy-root-cause'>{_e(cause.excerpt)}</pre>"


#: An advisory longer than this shows its start, and the rest when opened: advisories never
#: block, and long ones crowded the cards.
ADVISORY_CHARS = 140


def _advisory(text: str) -> str:
    if len(text) <= ADVISORY_CHARS and "\n" not in text:
        return f"<p class='predeploy-advisory'>advisory: {_e(text)}</p>"
    head = text.splitlines()[0][:ADVISORY_CHARS].rstrip() + " ..."
    return f"<details class='predeploy-advisory'><summary>advisory: {_e(head)}</summary><pre>{_e(text)}</pre></details>"


def _card(gate: GateCard) -> str:
    colour = STATUS_COLOURS.get(gate.status, "#57606a")
    parts: list[str] = []
    if gate.status == "halted":
        # One line per halted gate, not one box per test that did not run.
        tests = f"; {gate.halted_tests} tests not run" if gate.halted_tests else ""
        parts.append(f"<p class='predeploy-halted-line'>{_e(gate.reason)}{tests}</p>")
    else:
        if gate.figures:
            parts.append("<ul>" + "".join(f"<li>{_e(f)}</li>" for f in gate.figures) + "</ul>")
        if gate.status in BLOCKING and gate.reason:
            # In full (the reviewer decides from this card), except the service output that the
            # root cause below shows: once is enough.
            parts.append(f"<pre class='predeploy-card-reason'>{_e(without_excerpts(gate.reason, gate.root_causes))}</pre>")
        parts.extend(_cause(cause) for cause in gate.root_causes)
        if gate.pending_roles:
            parts.append(f"<p class='predeploy-card-pending'><strong>awaiting sign-off from: {_e(', '.join(gate.pending_roles))}</strong></p>")
        parts.extend(_advisory(a) for a in gate.advisories)
    wide = " predeploy-card-wide" if gate.status in BLOCKING else ""
    return (
        f"<div class='predeploy-card predeploy-card-{gate.status.replace(' ', '-')}{wide}' data-gate='{gate.number}' data-status='{_e(gate.status)}' "
        f"style='border-left-color:{colour}'><div class='predeploy-card-head'><span>Gate {gate.number} &middot; {_e(gate.name)}</span>"
        f"<span class='predeploy-card-status' style='color:{colour}'>{_e(gate.status.upper())}</span></div>{''.join(parts)}</div>"
    )


def _changes(decision: Decision) -> str:
    if not decision.changes and not decision.dependencies and not decision.api_changes and not decision.api_note:
        return ""
    title = f"What changed: {_e(decision.previous_release or 'previous')} &rarr; {_e(decision.release)}"
    rows = [(c.service, c.previous, c.candidate + ("  (SAME CODE as the previous release)" if c.same_code else "")) for c in decision.changes]
    parts = [f"<h2>{title}</h2>", _table(["service", "previous release", "candidate"], rows, " id='predeploy-changes'")]
    if decision.api_changes:
        parts.append(
            "<h3>API contract</h3>" + _table(["service", "kind", "operation", "what changed", "waiver"], decision.api_changes, " id='predeploy-api-changes'")
        )
    if decision.api_note:
        parts.append(f"<p id='predeploy-api-note'>API contract: {_e(decision.api_note)}</p>")
    if decision.dependencies:
        parts.append(
            f"<p>Dependencies ({len(decision.dependencies)}): {_e(', '.join(decision.dependencies))} <span class='predeploy-note'>({_e(decision.dependency_note)})</span></p>"
        )
    return "".join(parts)


def _risks(decision: Decision) -> str:
    if not (decision.risks or decision.approvals or decision.scanners_not_run):
        return ""
    parts = ["<h2>Accepted risks and approvals</h2>"]
    if decision.risks:
        rows = [(r.kind, r.id, r.covers, r.owner, r.why, r.until) for r in decision.risks]
        parts.append(_table(["kind", "waiver", "covers", "owner", "why", "until"], rows, " id='predeploy-risks'"))
    else:
        parts.append("<p>No waiver applied.</p>")
    if decision.approvals:
        rows = [(a.title, a.status, a.by, a.at, a.until, ", ".join(a.waivers)) for a in decision.approvals]
        parts.append(_table(["upstream approval", "status", "approved by", "on", "until", "waivers granted"], rows, " id='predeploy-approvals'"))
    if decision.scanners_not_run:
        items = "".join(f"<li>{_e(s)}</li>" for s in decision.scanners_not_run)
        parts.append(f"<p><strong>Not checked:</strong> scanners that could not run</p><ul id='predeploy-not-run'>{items}</ul>")
    return "".join(parts)


def _timings(decision: Decision) -> str:
    if not decision.timings and not decision.charts:
        return ""

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    rows = [(t.service, seconds(t.deploy), seconds(t.rollback), seconds(t.recovery), seconds(t.target)) for t in decision.timings]
    table = _table(["service", "deploy s", "rollback switch s", "recovery s", "target s"], rows, " id='predeploy-timings'") if rows else ""
    charts = "".join(f"<figure>{svg}<figcaption>{_e(title)}</figcaption></figure>" for title, svg in decision.charts)
    return f"<h2>Timings and observability</h2>{table}<div class='predeploy-charts'>{charts}</div>"


def _tests(decision: Decision) -> str:
    rows = [(t.gate, t.name, t.requirement, t.outcome, f"{t.seconds:.2f}", t.message) for t in decision.tests]
    counts: dict[str, int] = {}
    for t in decision.tests:
        counts[t.outcome] = counts.get(t.outcome, 0) + 1
    tally = ", ".join(f"{n} {outcome}" for outcome, n in counts.items())
    environment = _table(["", ""], decision.environment.items(), " id='predeploy-environment-table'")
    return (
        f"<details id='predeploy-tests'><summary>Every test ({len(decision.tests)}: {_e(tally)})</summary>"
        f"{_table(['gate', 'test', 'kind', 'outcome', 's', 'message'], rows)}</details>"
        f"<details id='predeploy-environment'><summary>Environment</summary>{environment}</details>"
        "<details id='predeploy-pytest-html' hidden><summary>pytest-html's table: captured output of every test</summary></details>"
    )


def review_html(decision: Decision) -> str:
    """The whole review page as one self-contained HTML fragment, between its markers."""
    gates = sorted(decision.gates, key=lambda g: g.number)
    cards = "".join(_card(gate) for gate in gates)
    # Where outcomes come from when not from this run, once for the gates it applies to.
    by_note: dict[str, list[str]] = {}
    for gate in gates:
        if gate.note:
            by_note.setdefault(gate.note, []).append(str(gate.number))
    sources = "".join(f"<p class='predeploy-note'>Gates {', '.join(numbers)}: {_e(note)}</p>" for note, numbers in by_note.items())
    notes = "".join(f"<p class='predeploy-note'>{_e(note)}</p>" for note in decision.notes)
    if decision.report_files:
        notes += f"<p id='predeploy-report-files' class='predeploy-note'>{_e(decision.report_files)}</p>"
    return (
        f"{BEGIN}<section id='predeploy-review' data-verdict='{decision.kind}'>{_verdict(decision)}"
        f"<h2>Gates</h2>{sources}<div class='predeploy-cards'>{cards}</div>"
        f"{_changes(decision)}{_risks(decision)}{_timings(decision)}<h2>Details</h2>{_tests(decision)}{notes}"
        f"</section>{_STYLE}{_PLACE}{END}"
    )


def replace_review(page: str, decision: Decision) -> str:
    """``page`` (a report holding a review page) with its review page rendered again."""
    start, end = page.find(BEGIN), page.find(END)
    if start < 0 or end < start:
        return page
    return page[:start] + review_html(decision) + page[end + len(END) :]
