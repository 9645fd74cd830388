"""The differ: walks two parsed trees once and yields every raw difference (added, removed,
changed, type-changed) with its path; lists are aligned by an identifying key or by their longest
common subsequence. It also collects the equal values that may be reused secrets.
"""

from __future__ import annotations

import re
from typing import Any

from pytest_predeploy.intake.parity.align import MAX_TOTAL_WORK, Alignment, align
from pytest_predeploy.intake.parity.config import ListKey
from pytest_predeploy.intake.parity.paths import ListPos, _match_text, _segment_text, compile_glob
from pytest_predeploy.intake.parity.secretkeys import _PAIR_NAMES, _PAIR_VALUES, _SECRET_DATA, is_reference, is_secret_object, secret_pair
from pytest_predeploy.intake.secrets import (
    SecretNames,
    assignment_secret,
)

# -- the comparison --------------------------------------------------------------------------

_MISSING = object()
ADDED, REMOVED, CHANGED, TYPE_CHANGED = "added", "removed", "changed", "type-changed"
RawDiff = tuple[str, tuple[Any, ...], Any, Any]


class Differ:
    """Walks two trees once; every leaf is compared with its type (1, 1.0 and true differ)."""

    def __init__(self, list_keys: list[ListKey], names: SecretNames | None = None, secret_glob_key: re.Pattern[str] | None = None) -> None:
        self._list_keys = [(compile_glob(rule.path), rule.key) for rule in list_keys]
        self.out: list[RawDiff] = []
        #: (path, value) of equal scalars (not null, booleans or empty strings) under a key whose
        #: name says secret, inside a mapping of secrets, or whose last segment a secret glob may
        #: match: the reuse candidates, confirmed by the policy.
        self.equal_secrets: list[tuple[tuple[Any, ...], Any]] = []
        self._names = names
        self._glob_key = secret_glob_key
        # Keys repeat across a baseline: each distinct key is classified once, and a mapping's
        # secret keys are found by one set intersection, so the hot loop below pays nothing for
        # secrets in the common case (a mapping without any).
        self._seen_keys: set[Any] = set()
        self._secret_keys: set[Any] = set()
        self._holding_keys: set[Any] = set()
        #: Paths of equal ``NAME=value`` list elements whose NAME says secret.
        self.assignments: set[tuple[Any, ...]] = set()
        #: Paths of mappings that name a secret (``{name: DB_PASSWORD, value: ...}``) on either side.
        self.secret_pairs: set[tuple[Any, ...]] = set()
        #: Paths of Kubernetes secret references under a secret-sounding key (a volume's
        #: ``secret: {secretName, items}``, a ServiceAccount's ``secrets: [{name}]``) on both sides:
        #: names of Secret objects, not secret values.
        self.references: set[tuple[Any, ...]] = set()
        #: (path, source length, target length) of lists too different to align within the
        #: bounds of ``align``: their differing middle was paired by position.
        self.positional: list[tuple[tuple[Any, ...], int, int]] = []
        self._work_left = MAX_TOTAL_WORK
        # Element fingerprints need paths only when a list key rule names one.
        self._path_rules = any(regex.pattern != ".*" for regex, _ in self._list_keys)

    def diff(self, a: Any, b: Any, path: tuple[Any, ...] = ()) -> list[RawDiff]:
        self._value(a, b, path, False)
        return self.out

    def _classify_keys(self, keys: Any) -> None:
        names, glob_key = self._names, self._glob_key
        for key in keys:
            holds = names is not None and names.holds_secrets(key)
            if holds:
                self._holding_keys.add(key)
            if holds or (names is not None and names.is_secret(key)) or (glob_key is not None and glob_key.fullmatch(_segment_text(key))):
                self._secret_keys.add(key)
        self._seen_keys.update(keys)

    def _value(self, a: Any, b: Any, path: tuple[Any, ...], under: bool) -> None:
        cls = a.__class__
        if cls is not b.__class__:
            self.out.append((TYPE_CHANGED, path, a, b))
        elif cls is dict:
            self._dicts(a, b, path, under)
        elif cls is list:
            self._lists(a, b, path, under)
        elif a != b and not (cls is float and a != a and b != b):
            self.out.append((CHANGED, path, a, b))
        elif under and a is not None and cls is not bool and a != "":
            self.equal_secrets.append((path, a))

    def _dicts(self, a: dict[Any, Any], b: dict[Any, Any], path: tuple[Any, ...], under: bool = False) -> None:
        # The hot loop of the comparison: locals only, and the common case (equal scalars of one
        # type) leaves after three tests.
        out = self.out
        get = b.get
        keys = a.keys()
        if self._names is not None or self._glob_key is not None:
            if not self._seen_keys.issuperset(keys):
                self._classify_keys(keys - self._seen_keys)
            secret = keys & self._secret_keys if self._secret_keys else None
            holding = keys & self._holding_keys if secret else None
            if secret:
                # A reference to a Secret (a volume's secret: {secretName, items}) on both sides
                # holds names, not secrets.
                refs = {key for key in secret if is_reference(a[key]) and is_reference(get(key, a[key]))}
                if refs:
                    secret -= refs
                    holding = holding - refs if holding else holding
                    self.references.update((*path, key) for key in refs)
        else:
            secret = holding = None
        if path and is_secret_object(path[-1]):
            # A Kubernetes Secret's data and stringData hold secrets under any key names.
            holding = (holding or set()) | (keys & _SECRET_DATA)
            secret = (secret or set()) | holding
        if self._names is not None and not (keys.isdisjoint(_PAIR_NAMES) and b.keys().isdisjoint(_PAIR_NAMES)) and secret_pair(a, self._names, b):
            # {name: DB_PASSWORD, value: ...}: the name says what the value is.
            self.secret_pairs.add(path)
            secret = (secret or set()) | (keys & _PAIR_VALUES)
        shared = 0
        for key, va in a.items():
            vb = get(key, _MISSING)
            if vb is _MISSING:
                out.append((ADDED, (*path, key), va, _MISSING))
                continue
            shared += 1
            cls = va.__class__
            if cls is not vb.__class__:
                out.append((TYPE_CHANGED, (*path, key), va, vb))
            elif cls is dict:
                self._dicts(va, vb, (*path, key), under or bool(holding and key in holding))
            elif cls is list:
                # The elements of a list under a secret name are each secret.
                self._lists(va, vb, (*path, key), under or bool(secret and key in secret))
            elif va != vb:
                if not (cls is float and va != va and vb != vb):
                    out.append((CHANGED, (*path, key), va, vb))
            elif (under or (secret and key in secret)) and va is not None and cls is not bool and va != "":
                self.equal_secrets.append(((*path, key), va))
        if shared < len(b):
            out.extend((REMOVED, (*path, key), _MISSING, vb) for key, vb in b.items() if key not in a)

    def _lists(self, a: list[Any], b: list[Any], path: tuple[Any, ...], under: bool) -> None:
        types_a, types_b = list(map(type, a)), list(map(type, b))
        if _CONTAINERS.isdisjoint(types_a) and _CONTAINERS.isdisjoint(types_b):
            # Lists of scalars are one value: [a, b] vs [b, a] is a change of that value.
            changed = types_a != types_b or (a != b and not all(map(_same_scalar, a, b)))
            if changed:
                self.out.append((CHANGED, path, a, b))
            if under and a:
                if not changed:
                    self.equal_secrets.append((path, a))
            elif self._names is not None and str in types_a and (types_a.count(str) < len(a) or "=" in "\x00".join(a)):
                # NAME=value lines (a compose file's environment list) hold secrets by NAME; one
                # present in both lists is reused even when other lines differ.
                in_b = {text for text in b if text.__class__ is str} if changed else None
                for index, text in enumerate(a):
                    if text.__class__ is str and "=" in text and (in_b is None or text in in_b) and assignment_secret(text, self._names):
                        where = (*path, ListPos(None, index))
                        self.assignments.add(where)
                        self.equal_secrets.append((where, text))
            return
        key = self._key_for(path, a, b)
        if key is None:
            self._aligned(a, b, path, under)
            return
        by_a = {item[key]: item for item in a}
        by_b = {item[key]: item for item in b}
        for ident, va in by_a.items():
            pos = (*path, ListPos(key, ident))
            vb = by_b.get(ident, _MISSING)
            if vb is _MISSING:
                self.out.append((ADDED, pos, va, _MISSING))
            else:
                self._dicts(va, vb, pos, under)
        for ident, vb in by_b.items():
            if ident not in by_a:
                self.out.append((REMOVED, (*path, ListPos(key, ident)), _MISSING, vb))

    def _aligned(self, a: list[Any], b: list[Any], path: tuple[Any, ...], under: bool) -> None:
        """Lists without an identifying key, aligned by a shortest edit script over element
        fingerprints (see ``align``), so one step inserted into a workflow is one added item and
        one modified step one pair, not a change of every later step. Paired elements carry the
        source's index; removed ones the target's."""
        fa = [self._fingerprint(item, self._element(path, i)) for i, item in enumerate(a)]
        fb = [self._fingerprint(item, self._element(path, i)) for i, item in enumerate(b)]
        if fa == fb:
            found = Alignment([(i, i) for i in range(len(a))], [], [])
        else:
            entries_a: dict[int, dict[Any, int]] = {}
            entries_b: dict[int, dict[Any, int]] = {}

            def similarity(i: int, j: int) -> int:
                """How alike two elements are (0: unrelated): the entries of two mappings that
                the differ finds equal, an equal name weighing more than all others."""
                if a[i].__class__ is not dict or b[j].__class__ is not dict:
                    return 0
                ea = entries_a.get(i) or entries_a.setdefault(i, self._entries(a[i], self._element(path, i)))
                eb = entries_b.get(j) or entries_b.setdefault(j, self._entries(b[j], self._element(path, j)))
                return sum(100 if key in _NAMING else 1 for key, print_a in ea.items() if eb.get(key) == print_a)

            found = align(fa, fb, similarity, self._work_left)
            self._work_left -= found.work
        if found.positional:
            self.positional.append((path, len(a), len(b)))
        out = self.out
        for i, j in found.pairs:
            # Equal pairs are walked too: their secrets may be reused.
            self._value(a[i], b[j], (*path, ListPos(None, i)), under)
        out.extend((ADDED, (*path, ListPos(None, i)), a[i], _MISSING) for i in found.added)
        out.extend((REMOVED, (*path, ListPos(None, j)), _MISSING, b[j]) for j in found.removed)

    def _element(self, path: tuple[Any, ...], index: int) -> tuple[Any, ...] | None:
        """The path of an aligned element as fingerprints need it, at its own index: None unless
        a list key rule names a path (one naming a single index, ``steps[3].env``, can then
        fingerprint a moved element differently from how the differ walks its pair)."""
        return (*path, ListPos(None, index)) if self._path_rules else None

    def _entries(self, mapping: dict[Any, Any], path: tuple[Any, ...] | None) -> dict[Any, int]:
        return {key: self._fingerprint(value, None if path is None else (*path, key)) for key, value in mapping.items()}

    def _fingerprint(self, value: Any, path: tuple[Any, ...] | None) -> int:
        """A hash of ``value`` that is equal exactly when the differ finds no difference (types
        matter, key order does not, NaN equals NaN, a list compared by key is unordered), up to
        hash collisions: a collision only misaligns, since paired elements are compared in full.
        ``path`` is built only when a list key rule names a path."""
        cls = value.__class__
        if cls is dict:
            return hash((dict, frozenset((key, self._fingerprint(item, None if path is None else (*path, key))) for key, item in value.items())))
        if cls is not list:
            return _scalar_hash(value)
        types = set(map(type, value))
        key = None if _CONTAINERS.isdisjoint(types) else self._key_for(() if path is None else path, value, value)
        if key is None:
            items = (self._fingerprint(item, None if path is None else (*path, ListPos(None, i))) for i, item in enumerate(value))
            return hash((list, tuple(items)))
        return hash((list, key, frozenset(self._fingerprint(item, None if path is None else (*path, ListPos(key, item[key]))) for item in value)))

    def _key_for(self, path: tuple[Any, ...], a: list[Any], b: list[Any]) -> str | None:
        text: str | None = None
        for regex, key in self._list_keys:
            if regex.pattern != ".*":  # "**" matches every list: no need to spell the path
                text = _match_text(path) if text is None else text
                if not regex.fullmatch(text):
                    continue
            if _keyed(a, key) and _keyed(b, key):
                return key
        return None


_CONTAINERS = frozenset({dict, list})


def _scalar_hash(value: Any) -> int:
    cls = value.__class__
    if cls is float and value != value:
        return hash((float, "nan"))
    try:
        return hash((cls, value))
    except TypeError:  # bytearray and other unhashable scalars
        return hash((cls, repr(value)))


#: Keys that name an element: an equal one weighs more than every other shared entry.
_NAMING = frozenset({"name", "id", "uses", "key"})


def _same_scalar(a: object, b: object) -> bool:
    return a == b or (a != a and b != b)  # NaN equals NaN here


def _keyed(items: list[Any], key: str) -> bool:
    """Every element is a mapping with a distinct, hashable scalar ``key``."""
    idents = []
    for item in items:
        if item.__class__ is not dict or key not in item or isinstance(item[key], (dict, list)):
            return False
        idents.append(item[key])
    return len(set(idents)) == len(idents)
