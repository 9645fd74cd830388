"""The decision first: a verdict banner and one card per gate, as HTML and as Markdown.

A reviewer attaching the report to a release review wants the decision before anything else:
the verdict (GO, NO-GO, AWAITING SIGN-OFF, INTERRUPTED), the release, the package digest and
who signed, then each gate's status, key figures and blocking reasons in full. This module
renders that from plain data (no pytest, no session), so the HTML report and the GitHub step
summary say the same thing in the same order.

In the HTML report the banner is placed as the first element of the page and pytest-html's
environment table is moved below the test results, by a small script inside the banner:
pytest-html renders its page with JavaScript anyway and offers no hook above its title.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

VerdictKind = Literal["go", "no-go", "awaiting", "interrupted", "partial"]

#: The words the banner leads with, per kind.
HEADLINES: dict[VerdictKind, str] = {
    "go": "GO",
    "no-go": "NO-GO",
    "awaiting": "AWAITING SIGN-OFF",
    "interrupted": "INTERRUPTED",
    "partial": "NOT JUDGED (NOT GO)",
}

#: Banner colours by kind: green only for GO; a partial run is grey, never green, because it
#: proves nothing about the gates it did not run.
COLOURS: dict[VerdictKind, tuple[str, str]] = {  # (background, border)
    "go": ("#dafbe1", "#1a7f37"),
    "no-go": ("#ffebe9", "#cf222e"),
    "awaiting": ("#fff8c5", "#9a6700"),
    "interrupted": ("#ffebe9", "#cf222e"),
    "partial": ("#f6f8fa", "#8c959f"),
}

STATUS_COLOURS = {
    "passed": "#1a7f37",
    "failed": "#cf222e",
    "halted": "#8c959f",
    "interrupted": "#cf222e",
    "awaiting sign-off": "#9a6700",
    "not run": "#8c959f",
}

#: Statuses whose reason blocks the release and is shown in full on the card.
BLOCKING = ("failed", "halted", "interrupted")


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


@dataclass(frozen=True)
class Signature:
    """One recorded sign-off."""

    role: str
    by: str
    decision: str


@dataclass(frozen=True)
class Decision:
    """Everything the banner says. ``detail`` is the full verdict line of the terminal (e.g.
    ``NO-GO: Gate 3 (Rollback & Security) failed``)."""

    kind: VerdictKind
    detail: str
    release: str
    package_sha256: str | None = None
    signatures: Sequence[Signature] = ()
    pending_roles: Sequence[str] = ()
    gates: Sequence[GateCard] = field(default_factory=tuple)


def signed_line(decision: Decision) -> str:
    """Who signed, and who still must."""
    signed = ", ".join(f"{s.by} ({s.role}, {s.decision})" for s in decision.signatures) or "nobody yet"
    pending = f"; awaiting: {', '.join(decision.pending_roles)}" if decision.pending_roles else ""
    return f"Signed by: {signed}{pending}"


def _card_html(gate: GateCard) -> str:
    colour = STATUS_COLOURS.get(gate.status, "#57606a")
    status_class = "predeploy-card-" + gate.status.replace(" ", "-").replace("_", "-")
    figures = "".join(f"<li>{html.escape(f)}</li>" for f in gate.figures)
    notes: list[str] = []
    if gate.status in BLOCKING and gate.reason:
        # In full: the reviewer decides from this card, not from a truncated first line.
        notes.append(f"<pre class='predeploy-card-reason'>{html.escape(gate.reason)}</pre>")
    if gate.pending_roles:
        notes.append(f"<p class='predeploy-card-pending'>awaiting sign-off from: {html.escape(', '.join(gate.pending_roles))}</p>")
    notes.extend(f"<p class='predeploy-card-advisory'>advisory: {html.escape(a)}</p>" for a in gate.advisories)
    return (
        f"<div class='predeploy-card {status_class}' data-gate='{gate.number}' data-status='{html.escape(gate.status)}' style='border-left-color:{colour}'>"
        f"<div class='predeploy-card-head'><span>Gate {gate.number} &middot; {html.escape(gate.name)}</span>"
        f"<span class='predeploy-card-status' style='color:{colour}'>{html.escape(gate.status.upper())}</span></div>"
        f"{'<ul>' + figures + '</ul>' if figures else ''}{''.join(notes)}</div>"
    )


_STYLE = (
    "<style>"
    "#predeploy-banner{font-family:Helvetica,Arial,sans-serif;margin:0 0 16px 0}"
    ".predeploy-verdict{border:2px solid;border-radius:6px;padding:12px 16px;margin-bottom:10px}"
    ".predeploy-verdict h1{margin:0 0 6px 0;font-size:28px}"
    ".predeploy-verdict p{margin:2px 0}"
    ".predeploy-cards{display:flex;flex-wrap:wrap;gap:8px}"
    ".predeploy-card{flex:1 1 220px;border:1px solid #d0d7de;border-left:6px solid;border-radius:4px;padding:6px 10px}"
    ".predeploy-card-head{display:flex;justify-content:space-between;font-weight:bold}"
    ".predeploy-card ul{margin:4px 0;padding-left:18px}"
    ".predeploy-card pre{white-space:pre-wrap;margin:4px 0;font-size:12px}"
    "</style>"
)

# Puts the banner first in <body> while the page is parsed, and the environment table after
# the results once pytest-html has rendered them.
_PLACE = (
    "<script>(function(){var b=document.getElementById('predeploy-banner');"
    "if(b&&document.body){document.body.insertBefore(b,document.body.firstChild);}"
    "document.addEventListener('DOMContentLoaded',function(){"
    "var h=document.getElementById('environment-header'),t=document.getElementById('environment'),"
    "r=document.getElementById('results-table');"
    "if(h&&t&&r&&r.parentNode){r.parentNode.insertBefore(t,r.nextSibling);r.parentNode.insertBefore(h,t);}"
    "});})();</script>"
)


def banner_html(decision: Decision) -> str:
    """The banner and the gate cards, with their style and the script that puts them on top."""
    background, border = COLOURS[decision.kind]
    package = (
        f"<p>package sha256 <code id='predeploy-banner-sha256'>{html.escape(decision.package_sha256)}</code></p>"
        if decision.package_sha256
        else "<p>no package sealed</p>"
    )
    cards = "".join(_card_html(gate) for gate in sorted(decision.gates, key=lambda g: g.number))
    return (
        f"<section id='predeploy-banner' data-verdict='{decision.kind}'>"
        f"<div class='predeploy-verdict predeploy-verdict-{decision.kind}' style='background:{background};border-color:{border}'>"
        f"<h1 id='predeploy-banner-verdict'>{HEADLINES[decision.kind]} &middot; release {html.escape(decision.release)}</h1>"
        f"<p id='predeploy-banner-detail'><strong>{html.escape(decision.detail)}</strong></p>"
        f"{package}<p id='predeploy-banner-signed'>{html.escape(signed_line(decision))}</p></div>"
        f"<div class='predeploy-cards'>{cards}</div></section>{_STYLE}{_PLACE}"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def summary_markdown(decision: Decision) -> str:
    """The GitHub step summary: the verdict first, then one row per gate with reasons in full."""
    lines = [
        f"## {HEADLINES[decision.kind]}: release {decision.release}",
        "",
        f"**{decision.detail}**",
        "",
        f"Package sha256: `{decision.package_sha256}`" if decision.package_sha256 else "No package sealed.",
        "",
        signed_line(decision),
        "",
        "| Gate | Name | Status | Key figures | Blocking reasons and notes |",
        "|---|---|---|---|---|",
    ]
    for gate in sorted(decision.gates, key=lambda g: g.number):
        notes: list[str] = []
        if gate.status in BLOCKING and gate.reason:
            notes.append(gate.reason)
        if gate.pending_roles:
            notes.append("awaiting sign-off from: " + ", ".join(gate.pending_roles))
        notes.extend("advisory: " + a for a in gate.advisories)
        lines.append(f"| {gate.number} | {_cell(gate.name)} | {gate.status.upper()} | {_cell('; '.join(gate.figures))} | {_cell(chr(10).join(notes))} |")
    return "\n".join(lines) + "\n"
