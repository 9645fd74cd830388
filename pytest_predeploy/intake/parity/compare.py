"""The comparison step (compare_trees) and the whole parity run (compare_environments)."""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from itertools import chain
from pathlib import Path
from typing import Any

from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.core.fields import Severity, format_size, utcnow
from pytest_predeploy.core.redact import MIN_SECRET_LENGTH, Redactor
from pytest_predeploy.intake.parity.align import MAX_EDITS, MAX_TOTAL_WORK, MAX_WORK
from pytest_predeploy.intake.parity.classify import _by_value, _classify, _nested_secrets, _Policy, _scalars, compare_secrets, required_flag_states
from pytest_predeploy.intake.parity.config import ParityConfig, ParityProject
from pytest_predeploy.intake.parity.diff import _MISSING, CHANGED, Differ
from pytest_predeploy.intake.parity.inputs import Capture, _no_gc, _type_name, load_environment
from pytest_predeploy.intake.parity.paths import _match_text, parse_exact_path, render_path
from pytest_predeploy.intake.parity.report import DriftItem, ParityReport, ParitySummary, ParityValue, _short, _sort_key
from pytest_predeploy.intake.parity.secretkeys import _PAIR_SHOWN, is_reference, is_weak
from pytest_predeploy.intake.parity.show import _Shower


def compare_trees(
    parity: ParityConfig,
    source_tree: dict[str, Any],
    target_tree: dict[str, Any],
    *,
    source: str = "staging",
    target: str = "production",
    secret_values: Mapping[str, str] | None = None,
    now: datetime | None = None,
    notes: list[str] | None = None,
) -> list[DriftItem]:
    """The comparison step proper: every difference of two parsed trees, classified by the rules
    (secret-valued keys, required flags and waivers included), unsorted. ``secret_values`` (the
    environments' secret sources) are redacted wherever they appear in a shown value. What the
    reader must know about how the comparison was bounded is appended to ``notes``."""
    with _no_gc():  # the walk and the items create no cycles; see _no_gc
        return list(drift_items(parity, source_tree, target_tree, source=source, target=target, secret_values=secret_values, now=now, notes=notes))


def drift_items(
    parity: ParityConfig,
    source_tree: dict[str, Any],
    target_tree: dict[str, Any],
    *,
    source: str = "staging",
    target: str = "production",
    secret_values: Mapping[str, str] | None = None,
    now: datetime | None = None,
    notes: list[str] | None = None,
) -> Iterator[DriftItem]:
    """:func:`compare_trees` one item at a time: a caller that keeps only some of them (the report
    keeps ``parity.max_report_items``) never holds every item of a baseline that differs
    everywhere (each item with its shown values costs a few KB: tens of times the input's size)."""
    policy = _Policy(parity, now or utcnow())
    differ = Differ(parity.list_keys, policy.names, policy.secret_glob_key)

    def key_for(where: tuple[Any, ...], items: list[Any]) -> str | None:
        return differ._key_for(where, items, items)

    raw = differ.diff(source_tree, target_tree)
    policy.references = differ.references
    # A reference added, removed or retyped whole (a volume's secret: on one side only).
    policy.references.update(path for _, path, a, b in raw if all(is_reference(v) for v in (a, b) if v is not _MISSING))
    if notes is not None:
        notes.extend(_positional_notes(differ.positional))
    reused = [
        (path, value)
        for path, value in differ.equal_secrets
        if policy.is_reuse_candidate(path) or ((path in differ.assignments or path[:-1] in differ.secret_pairs) and not policy.excepted(path))
    ]
    # Every value found under a secret key, in either tree, is redacted wherever it is
    # shown: the same password may sit in a DSN under an innocent key.
    found: list[tuple[tuple[Any, ...], Any]] = [
        (path, scalar) for path, value in reused for scalar in _scalars(value, policy.names if path in differ.assignments else None)
    ]
    pairs = differ.secret_pairs
    secret_paths = (
        [policy.is_secret(path) or any(path[:i] in pairs and path[i] not in _PAIR_SHOWN for i in range(len(path))) for _, path, _, _ in raw]
        if pairs
        else [policy.is_secret(path) for _, path, _, _ in raw]
    )
    # Weak secret values by path, with the sides (0 source, 1 target) that hold one.
    weak: dict[tuple[Any, ...], set[int]] = {path: {0, 1} for path, scalar in found if is_weak(scalar)}
    for (_, path, a, b), secret in zip(raw, secret_paths, strict=False):
        for side, value in enumerate((a, b)):
            start = len(found)
            if secret:
                found.extend((path, scalar) for scalar in _scalars(value))
            else:
                found.extend((path, scalar) for scalar in _scalars(value, policy.names))
                if isinstance(value, (dict, list)):
                    found.extend(_nested_secrets(value, path, policy))
            for where, scalar in found[start:]:
                if is_weak(scalar):
                    weak.setdefault(where, set()).add(side)
    known = dict(secret_values or {})
    for path, scalar in found:
        known.setdefault(f"{render_path(path)}#{len(known)}", str(scalar))
    numbers = {str(scalar) for _, scalar in found if not isinstance(scalar, str)}
    tagged = _by_value(known)
    # A weak value found in the trees is redacted on token boundaries only. One from a
    # secret source is redacted like everything the run writes is checked for it
    # (wherever it occurs, from MIN_SECRET_LENGTH characters), and below that on tokens.
    sourced = set((secret_values or {}).values())
    tokens = {tag: value for tag, value in tagged.items() if is_weak(value) and (value not in sourced or len(value) < MIN_SECRET_LENGTH)}
    shower = _Shower(Redactor({tag: value for tag, value in tagged.items() if tag not in tokens}), policy.secret_step, numbers, policy.names, tokens)
    # A flag the release needs on in staging is expected to differ from production until the
    # release ships, so that difference is not drift.
    flags = required_flag_states(parity, source_tree.get("flags", {}))
    flag_paths = {render_path(("flags", *parse_exact_path(flag))): ok for flag, _, _, ok in flags}
    for entry, secret in zip(raw, secret_paths, strict=False):
        item = _classify(entry, secret, policy, shower, key_for)
        if item.kind == CHANGED and flag_paths.get(item.path) and item.status == "drift":
            item.status, item.severity, item.rule = "ignored", Severity.info, "required_flags"
            item.remediation = "expected: the release requires this state in staging"
        yield item

    for path, value in reused:
        view = ParityValue(type=_type_name(value), redacted=True)
        yield (
            policy.finish(
                {
                    "path": render_path(path),
                    "kind": "secret",
                    "detail": "REUSED",
                    "source_value": view,
                    "target_value": view,
                    "severity": parity.secrets.reused,
                    "status": "drift",
                    "rule": "secret keys (secret_names, secret_mappings, secret_paths)",
                    "remediation": f"rotate this credential in {source}: it holds the same value as {target}",
                },
                _match_text(path),
            )
        )

    names = (source, target)
    for path, sides in weak.items():
        view = ParityValue(type="secret", redacted=True)
        holders = " and ".join(names[side] for side in sorted(sides))
        yield (
            policy.finish(
                {
                    "path": render_path(path),
                    "kind": "secret",
                    "detail": "WEAK",
                    "source_value": view if 0 in sides else None,
                    "target_value": view if 1 in sides else None,
                    "severity": parity.secrets.weak,
                    "status": "drift",
                    "rule": "weak secret (under 8 characters, one word, only digits or a placeholder)",
                    "remediation": f"replace this placeholder in {holders} with a generated credential (16 or more random characters) from a secret source",
                },
                _match_text(path),
            )
        )

    for flag, wanted, actual, ok in flags:
        if ok:
            continue
        path = ("flags", *parse_exact_path(flag))
        yield (
            policy.finish(
                {
                    "path": render_path(path),
                    "kind": "required-flag",
                    "detail": "missing in the source" if actual is _MISSING else f"is {_short(shower.view(actual))}, the release requires {json.dumps(wanted)}",
                    "source_value": shower.view(actual),
                    "target_value": shower.view(wanted),
                    "severity": Severity.critical,
                    "status": "drift",
                    "rule": "required_flags",
                    "remediation": f"set flag {flag} to {json.dumps(wanted)} in {source} (the release requires it), then re-run parity",
                },
                _match_text(path),
            )
        )


def compare_environments(
    config: ParityProject,
    source: str,
    target: str,
    release: str,
    capture: Capture | None = None,
    *,
    transcripts: Path | None = None,
    now: datetime | None = None,
) -> ParityReport:
    """Compare ``source`` (staging) with ``target`` (production) and classify every difference.

    ``capture(env, command)`` returns a capture command's stdout; without it the command runs
    here (transcript under ``transcripts``).
    """
    if source == target:
        raise ConfigError(f"--source and --target are both {source!r}; compare two environments")
    parity: ParityConfig = config.parity
    left = load_environment(config, source, capture, transcripts)
    right = load_environment(config, target, capture, transcripts)
    now = now or utcnow()
    notes: list[str] = []
    checks, secret_items = compare_secrets(left, right, _Policy(parity, now))
    every = Counter[str]()
    items = drift_items(parity, left.tree, right.tree, source=source, target=target, secret_values=config.secret_values(), now=now, notes=notes)
    with _no_gc():  # the walk and the items create no cycles; see _no_gc
        # Only the items the report lists are kept (the first max_report_items in report order);
        # the rest are counted as they pass.
        listed = heapq.nsmallest(parity.max_report_items, _counted(chain(items, secret_items), every), key=_sort_key)
    summary = ParitySummary(
        critical=every["critical"],
        major=every["major"],
        minor=every["minor"],
        info=every["info"],
        waived=every["waived"],
        expired_waivers=every["waiver-expired"],
        ignored=every["ignored"],
        blocking=every["critical"],
        secrets_reused=every["REUSED"],
    )
    report = ParityReport(
        release=release,
        source=source,
        target=target,
        passed=summary.blocking == 0,
        summary=summary,
        items=[],
        secrets=checks,
        required_flags=dict(parity.required_flags),
        inputs=left.inputs + right.inputs,
        notes=notes,
    )
    report.items = _within(listed, parity.max_report_bytes - _json_size(report) - _NOTE_ALLOWANCE)
    if len(report.items) < _items(every):
        cut = "bytes" if len(report.items) < len(listed) else "items"
        report.notes.append(_omitted_note(every - _tally(report.items), parity, cut, len(report.items)))
    return report


def _tally(items: Iterable[DriftItem]) -> Counter[str]:
    """Counts by what the summary and the omitted note need: each item under its severity when
    active (else its status), REUSED secrets, expired waivers."""
    counts = Counter[str]()
    for item in items:
        counts[item.severity.value if item.active else item.status] += 1
        if item.status == "waiver-expired":
            counts["waiver-expired"] += 1
        if item.kind == "secret" and item.detail == "REUSED":
            counts["REUSED"] += 1
    return counts


#: Each item is counted once under one of these (see _tally), worst first.
_ORDER = (*(s.value for s in sorted(Severity, key=lambda s: -s.rank)), "waived", "ignored")


def _items(counts: Counter[str]) -> int:
    return sum(counts[key] for key in _ORDER)


def _counted(items: Iterable[DriftItem], counts: Counter[str]) -> Iterator[DriftItem]:
    for item in items:
        counts.update(_tally((item,)))
        yield item


#: Room kept in the report for the note that says what was left out.
_NOTE_ALLOWANCE = 1024
#: An item of the report's ``items`` list is written 4 spaces in, and followed by ",\n".
_ITEM_INDENT = 4


def _json_size(model: ParityReport | DriftItem, indent: int = 0) -> int:
    """Bytes ``model`` takes in the report as write_artifact writes it (indented JSON)."""
    text = model.model_dump_json(indent=2)
    return len(text.encode()) + indent * (text.count("\n") + 1) + 2


def _within(items: list[DriftItem], budget: int) -> list[DriftItem]:
    """The first of ``items`` (in report order) whose JSON fits in ``budget`` bytes."""
    for count, item in enumerate(items):
        budget -= _json_size(item, _ITEM_INDENT)
        if budget < 0:
            return items[:count]
    return items


#: Lists paired by position named one by one in the notes; the rest are counted.
_NAMED_LISTS = 20


def _positional_notes(lists: list[tuple[tuple[Any, ...], int, int]]) -> list[str]:
    notes = [
        f"{render_path(path)}: {n} and {m} elements differ too much to align within the bound "
        f"(at most {MAX_EDITS} edits and {MAX_WORK:,} steps a list, {MAX_TOTAL_WORK:,} in all): "
        "the differing elements were paired by position, so its items may not line up"
        for path, n, m in lists[:_NAMED_LISTS]
    ]
    if len(lists) > _NAMED_LISTS:
        notes.append(f"... {len(lists) - _NAMED_LISTS} more lists paired by position")
    return notes


def _omitted_note(rest: Counter[str], parity: ParityConfig, cut: str, listed: int) -> str:
    """The counted '... N more' of a report cut at parity.max_report_items items or
    parity.max_report_bytes bytes (the least severe go)."""
    what = ", ".join(f"{rest[key]} {key}" for key in _ORDER if rest[key])
    total = _items(rest)
    if cut == "items":
        limit = f"the report lists the first {parity.max_report_items} (parity.max_report_items)"
    else:
        limit = f"the report lists the first {listed}, as many as fit in {format_size(parity.max_report_bytes)} (parity.max_report_bytes)"
    return f"... {total} more items not listed ({what}): {limit}, blocking and most severe first; the summary counts every item"
