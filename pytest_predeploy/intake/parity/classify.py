"""Turns raw differences into report items: severity rules, ignores and waivers, secret
recognition at every depth, redaction of shown values, secret comparison by HMAC and required flags.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets as _secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pytest_predeploy.core.fields import Severity
from pytest_predeploy.intake.parity.config import DriftWaiver, IgnoreRule, ParityConfig, SeverityRule
from pytest_predeploy.intake.parity.diff import _MISSING, ADDED, CHANGED, REMOVED, TYPE_CHANGED, RawDiff
from pytest_predeploy.intake.parity.inputs import EnvironmentState, _type_name
from pytest_predeploy.intake.parity.paths import _SEP, ListPos, _match_text, _segment_regex, _tokens, compile_glob, parse_exact_path, render_path
from pytest_predeploy.intake.parity.report import DriftItem, ParityValue, SecretCheck
from pytest_predeploy.intake.parity.secretkeys import _PAIR_SHOWN, _SECRET_DATA, is_reference, is_secret_object, is_weak, secret_pair
from pytest_predeploy.intake.parity.show import _Shower
from pytest_predeploy.intake.secrets import (
    SecretNames,
    assignment_secret,
)

_REMEDIATION = {
    ADDED: "staging has this and production does not: remove it from staging, or add it to the production baseline if the release introduces it",
    REMOVED: "production has this and staging lacks it: add it to staging",
    CHANGED: "make staging's value match production's, or record why it differs (ignore rule or waiver)",
    TYPE_CHANGED: "the type differs (quoted number, yes/no read as a boolean?): make staging's type match production's",
}


def _last_segments(patterns: list[str]) -> re.Pattern[str] | None:
    """A cheap first test on a key alone: could a path ending in it match one of ``patterns``?"""
    if not patterns:
        return None
    parts = []
    for pattern in patterns:
        kind, text = _tokens(pattern)[-1]
        parts.append(".*" if kind == "glob" and (text == "**" or text.startswith("[")) else _segment_regex(kind, text))
    return re.compile("|".join(f"(?:{part})" for part in parts), re.IGNORECASE)


def _prefix_regexes(pattern: str) -> dict[int, re.Pattern[str]]:
    """For a rule written under a node: the regexes its first k segments make, for each k the
    node's path may have, so that ``infrastructure.database.*`` covers ``infrastructure.database``
    and ``infrastructure`` themselves. Only segments before a ``**`` count: ``**.password`` is
    written under no node in particular (its leaves still count, see ``_Policy.severity_of``)."""
    tokens = _tokens(pattern)
    fixed = next((i for i, (kind, text) in enumerate(tokens) if kind == "glob" and text == "**"), len(tokens))
    out: dict[int, re.Pattern[str]] = {}
    for k in range(1, min(fixed, len(tokens) - 1) + 1):
        out[k] = re.compile(_SEP.join(_segment_regex(kind, text) for kind, text in tokens[:k]))
    return out


def _leaf_paths(value: Any, path: tuple[Any, ...], key_for: Callable[[tuple[Any, ...], list[Any]], str | None]) -> Iterator[tuple[Any, ...]]:
    """Every leaf (scalar or empty container) of ``value``, with its path as the differ writes it."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict) and item:
            stack.extend(((v, (*where, k)) for k, v in item.items()))
        elif isinstance(item, list) and item:
            key = key_for(where, item)
            stack.extend((v, (*where, ListPos(key, v[key] if key else i))) for i, v in enumerate(item))
        else:
            yield where


@dataclass
class _Policy:
    config: ParityConfig
    now: datetime
    rules: list[tuple[re.Pattern[str], SeverityRule]] = field(init=False)
    ignores: list[tuple[re.Pattern[str], IgnoreRule]] = field(init=False)
    waivers: list[tuple[re.Pattern[str], DriftWaiver]] = field(init=False)
    names: SecretNames = field(init=False)
    secret_paths: list[re.Pattern[str]] = field(init=False)
    not_secret: list[re.Pattern[str]] = field(init=False)
    secret_glob_key: re.Pattern[str] | None = field(init=False)
    #: Paths of secret references the differ found (see ``is_reference``): nothing at or under
    #: them is secret.
    references: set[tuple[Any, ...]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.rules = [(compile_glob(r.path), r) for r in self.config.rules]
        self.ignores = [(compile_glob(r.path), r) for r in self.config.ignore]
        self.waivers = [(compile_glob(w.path), w) for w in self.config.waivers]
        self.names = SecretNames(self.config.secret_names, self.config.secret_mappings)
        self.secret_paths = [compile_glob(p, ignore_case=True) for p in self.config.secret_paths]
        self.not_secret = [compile_glob(p, ignore_case=True) for p in self.config.not_secret_paths]
        self.secret_glob_key = _last_segments(self.config.secret_paths)
        self._under = [(_prefix_regexes(r.path), r) for r in self.config.rules]

    def excepted(self, path: tuple[Any, ...]) -> bool:
        if not self.not_secret:
            return False
        text = _match_text(path)
        return any(regex.fullmatch(text) for regex in self.not_secret)

    def secret_step(self, path: tuple[Any, ...]) -> bool:
        """The node at ``path`` is secret by its own key (name, mapping of secrets, a Kubernetes
        Secret's data) or a glob."""
        hit = True in self.names.flags(path[-1]) or self._secret_data(path)
        if not hit and self.secret_paths:
            text = _match_text(path)
            hit = any(regex.fullmatch(text) for regex in self.secret_paths)
        return hit and not self.excepted(path)

    @staticmethod
    def _secret_data(path: tuple[Any, ...]) -> bool:
        return len(path) >= 2 and path[-1] in _SECRET_DATA and is_secret_object(path[-2])

    def is_secret(self, path: tuple[Any, ...]) -> bool:
        """Never shown: the node or one of its ancestors is secret."""
        flags = self.names.flags
        if not self.secret_paths and not any(True in flags(segment) or is_secret_object(segment) for segment in path):
            return False
        for i in range(len(path)):
            if self.references and path[: i + 1] in self.references:
                return False
            if self.secret_step(path[: i + 1]):
                return True
        return False

    def is_reuse_candidate(self, path: tuple[Any, ...]) -> bool:
        """An equal value here is credential reuse: the key's name says secret, it is inside a
        mapping of secrets, or a secret glob names it. A secret-named parent alone (smtp.auth
        with a user name beside the password) does not make every equal child a credential."""
        if self.excepted(path):
            return False
        if self.names.is_secret(path[-1]) or any(
            (self.names.holds_secrets(seg) or self._secret_data(path[: i + 1])) and not self.excepted(path[: i + 1]) for i, seg in enumerate(path)
        ):
            return True
        text = _match_text(path)
        return any(regex.fullmatch(text) for regex in self.secret_paths)

    def severity(self, text: str) -> tuple[Severity, str | None, str | None]:
        for regex, rule in self.rules:
            if regex.fullmatch(text):
                return rule.severity, f"severity {rule.path}", rule.remediation or None
        return self.config.default_severity, None, None

    def severity_of(
        self,
        kind: str,
        path: tuple[Any, ...],
        values: tuple[Any, Any],
        key_for: Callable[[tuple[Any, ...], list[Any]], str | None],
        text: str | None = None,
    ) -> tuple[Severity, str | None, str | None]:
        """The severity of a difference at ``path``. A node added, removed or retyped takes its
        children with it, so it is at least as severe as the rules written under it say
        (``infrastructure.database.*`` for ``infrastructure.database``) and as its worst leaf on
        either side: deleting a block cannot be milder than changing one of its values. ``text``
        is ``_match_text(path)`` when the caller has it already."""
        text = _match_text(path) if text is None else text
        found = self.severity(text)
        if kind == CHANGED:
            return found
        best = found
        depth = len(path)
        for prefixes, rule in self._under:
            regex = prefixes.get(depth)
            if regex is not None and rule.severity.rank > best[0].rank and regex.fullmatch(text):
                best = rule.severity, f"severity {rule.path} (written under this node)", rule.remediation or None
        for value in values:
            if isinstance(value, (dict, list)) and self.rules:
                for leaf in _leaf_paths(value, path, key_for):
                    severity, rule_name, remediation = self.severity(_match_text(leaf))
                    if severity.rank > best[0].rank:
                        best = severity, f"{rule_name} (at {render_path(leaf)})" if rule_name else None, remediation
        return best

    def ignored(self, text: str, kind: str) -> IgnoreRule | None:
        for regex, rule in self.ignores:
            if kind in rule.kinds and regex.fullmatch(text):
                return rule
        return None

    def finish(self, item: dict[str, Any], text: str) -> DriftItem:
        """Apply waivers: an unexpired one waives; an expired one is named and the drift stays."""
        matching = [w for regex, w in self.waivers if regex.fullmatch(text)]
        current = [w for w in matching if w.expires_at > self.now]
        if current:
            waiver = current[0]
            item.update(
                status="waived", waiver=waiver.id, remediation=f"waived until {waiver.expires_at.isoformat()} by {waiver.owner}: {waiver.justification}"
            )
        elif matching:
            waiver = matching[0]
            item.update(
                status="waiver-expired",
                waiver=waiver.id,
                remediation=f"waiver {waiver.id} ({waiver.owner}) expired at {waiver.expires_at.isoformat()}: renew it or fix the drift; "
                + item["remediation"],
            )
        return _item(item)


def _item(fields: dict[str, Any]) -> DriftItem:
    # Every field comes from our own code with its final type; a large drift has thousands of
    # items, and validating each again is a measurable share of the comparison (bench/parity.py).
    return DriftItem.model_construct(**fields)


def _classify(raw: RawDiff, secret: bool, policy: _Policy, shower: _Shower, key_for: Callable[[tuple[Any, ...], list[Any]], str | None]) -> DriftItem:
    kind, path, a, b = raw
    text = _match_text(path)
    severity, rule, remediation = policy.severity_of(kind, path, (a, b), key_for, text)
    if kind == TYPE_CHANGED:
        detail = f"{_type_name(a)} -> {_type_name(b)} (staging -> production)"
    elif kind == ADDED:
        detail = "only in the source"
    elif kind == REMOVED:
        detail = "missing in the source"
    else:
        detail = "values differ"
    item: dict[str, Any] = {
        "path": render_path(path),
        "kind": kind,
        "detail": detail,
        "source_value": shower.view(a, secret, path),
        "target_value": shower.view(b, secret, path),
        "severity": severity,
        "status": "drift",
        "rule": rule,
        "remediation": remediation or _REMEDIATION[kind],
    }
    ignore = policy.ignored(text, kind)
    if ignore is not None:
        # Expected, so informational whatever its rule says; the rule stays named.
        item.update(status="ignored", severity=Severity.info, rule=f"ignore {ignore.path}", remediation=f"expected: {ignore.reason}")
        return _item(item)
    return policy.finish(item, text)


def _fingerprints(values: Mapping[str, str], key: bytes) -> dict[str, bytes]:
    return {name: hmac.new(key, value.encode("utf-8"), hashlib.sha256).digest() for name, value in values.items() if value}


def _scalars(value: Any, names: SecretNames | None = None) -> Iterator[Any]:
    """The scalars of ``value`` that could be secret (not null, booleans or empty strings); with
    ``names``, only the values of ``NAME=value`` strings whose NAME is secret."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif names is not None:
            if isinstance(item, str) and "=" in item and (secret := assignment_secret(item, names)):
                yield secret
        elif item is not None and item is not _MISSING and not isinstance(item, bool) and item != "":
            yield item


def _nested_secrets(value: Any, path: tuple[Any, ...], policy: _Policy) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(path, scalar) of every value at or under a secret key inside ``value``."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if where and policy.secret_step(where) and not is_reference(item):
            yield from ((where, scalar) for scalar in _scalars(item))
        elif isinstance(item, dict):
            if secret_pair(item, policy.names):
                if "valueFrom" in item:  # references, shown: see _PAIR_SHOWN
                    stack.append((item["valueFrom"], (*where, "valueFrom")))
                yield from ((where, scalar) for k, v in item.items() if k not in _PAIR_SHOWN for scalar in _scalars(v))
            else:
                stack.extend((v, (*where, k)) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, (*where, ListPos(None, i))) for i, v in enumerate(item))


def compare_secrets(source: EnvironmentState, target: EnvironmentState, policy: _Policy) -> tuple[list[SecretCheck], list[DriftItem]]:
    """Statuses by HMAC-SHA256 under a key that exists only for this call; an empty value counts
    as missing (an unset credential cannot be reused)."""
    key = _secrets.token_bytes(32)
    fa, fb = _fingerprints(source.secrets, key), _fingerprints(target.secrets, key)
    del key
    severities = policy.config.secrets
    checks: list[SecretCheck] = []
    items: list[DriftItem] = []
    # A name set empty on both sides is unset in both: still a secret to provision, not an absence.
    empty = {name for name in source.secrets.keys() & target.secrets.keys() if name not in fa and name not in fb}
    for name in sorted(fa.keys() | fb.keys() | empty):
        if name in empty:
            status = f"missing-in-{source.name}-and-{target.name}"
        elif name in fa and name in fb:
            status = "REUSED" if hmac.compare_digest(fa[name], fb[name]) else "present"
        else:
            status = f"missing-in-{target.name if name in fa else source.name}"
        checks.append(SecretCheck(name=name, status=status))
        weak = [env for env, found in ((source, fa), (target, fb)) if name in found and is_weak(env.secrets[name])]
        if weak:
            items.append(_weak_source(name, weak, source, target, policy))
        if status == "present":
            continue
        if name in empty:
            severity = max(severities.missing_in_source, severities.missing_in_target, key=lambda s: s.rank)
            remediation = f"{name} is empty in both {source.name} and {target.name}: provision it in both before the release, or stop using it"
        elif status == "REUSED":
            severity, remediation = (
                severities.reused,
                f"rotate {name} in {source.name}: it holds the same value as {target.name} (a leak of one is a leak of both)",
            )
        elif name in fb:
            severity, remediation = severities.missing_in_source, f"provision {name} in {source.name}'s secret source"
        else:
            severity, remediation = severities.missing_in_target, f"provision {name} in {target.name} before the release, or stop using it in {source.name}"
        view = ParityValue(type="secret", redacted=True)
        item = {
            "path": render_path(("secrets", name)),
            "kind": "secret",
            "detail": status,
            "severity": severity,
            "source_value": view if name in fa else None,
            "target_value": view if name in fb else None,
            "status": "drift",
            "rule": "secrets",
            "remediation": remediation,
        }
        items.append(policy.finish(item, _match_text(("secrets", name))))
    return checks, items


def _weak_source(name: str, weak: list[EnvironmentState], source: EnvironmentState, target: EnvironmentState, policy: _Policy) -> DriftItem:
    """The WEAK item of a secret source's value that is short or common (see ``is_weak``)."""
    view = ParityValue(type="secret", redacted=True)
    item = {
        "path": render_path(("secrets", name)),
        "kind": "secret",
        "detail": "WEAK",
        "severity": policy.config.secrets.weak,
        "source_value": view if source in weak else None,
        "target_value": view if target in weak else None,
        "status": "drift",
        "rule": "weak secret (under 8 characters, one word, only digits or a placeholder)",
        "remediation": f"replace {name} in {' and '.join(env.name for env in weak)} with a generated credential (16 or more random characters)",
    }
    return policy.finish(item, _match_text(("secrets", name)))


def _by_value(named: Mapping[str, str]) -> dict[str, str]:
    """One name per distinct value (the first, in sorted order): the redaction tag names where a
    value was found without listing every place."""
    out: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in sorted(named.items()):
        if value in seen:
            continue
        seen.add(value)
        base = tag = name.split("#", 1)[0]
        number = 2
        while tag in out:
            tag, number = f"{base}~{number}", number + 1
        out[tag] = value
    return out


def _lookup(tree: Any, segments: tuple[str, ...]) -> Any:
    for segment in segments:
        if not isinstance(tree, dict) or segment not in tree:
            return _MISSING
        tree = tree[segment]
    return tree


def required_flag_states(config: ParityConfig, flags: Mapping[str, Any]) -> list[tuple[str, Any, Any, bool]]:
    """(flag, required state, actual state or _MISSING, ok) for every required flag."""
    out = []
    for flag, wanted in config.required_flags.items():
        actual = _lookup(flags, parse_exact_path(flag))
        out.append((flag, wanted, actual, actual is not _MISSING and actual.__class__ is wanted.__class__ and actual == wanted))
    return out


def is_missing(value: Any) -> bool:
    return value is _MISSING
