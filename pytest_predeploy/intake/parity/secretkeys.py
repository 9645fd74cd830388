"""Secrets recognised by the shape of a mapping rather than a key name: a Kubernetes Secret's
data, and ``{name: DB_PASSWORD, value: ...}`` pairs; references to secrets that only sound
secret (a pod's ``secret: {secretName: ...}`` volume); and weak secret values. Shared by the
differ and the policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pytest_predeploy.intake.secrets import (
    SecretNames,
)

#: The fields of a Kubernetes Secret that hold its values, whatever their keys are called.
_SECRET_DATA = frozenset({"data", "stringData"})
#: A mapping that names a setting under one of these keys (a Kubernetes or ECS environment
#: variable: {name: DB_PASSWORD, value: ...}) holds a secret when the name says so: every other
#: entry is hidden, and an equal ``value`` is reuse.
_PAIR_NAMES = frozenset({"name", "key"})
_PAIR_VALUES = frozenset({"value"})
#: Entries of such a pair that are shown: the name, and ``valueFrom``, which holds references
#: (Kubernetes' secretKeyRef/configMapKeyRef/fieldRef, an ECS secret's ARN), never a value.
_PAIR_SHOWN = frozenset({"name", "key", "valueFrom"})
#: A mapping holding only these (``{name, key, optional}``: a secretKeyRef) names a secret.
_KEY_REF = frozenset({"name", "key", "optional"})

# -- references to secrets -------------------------------------------------------------------
#
# Under a key that sounds secret, Kubernetes keeps references to Secret objects: a pod volume's
# ``secret: {secretName, items: [{key, path}], defaultMode, optional}``, a projected volume's
# ``secret: {name, items}``, a ServiceAccount's ``secrets: [{name}]``; ECS keeps parameter ARNs in
# ``secrets: [{name, valueFrom}]``. Their values are names of Secret objects, of keys inside them
# or of parameters: not secret, and equal in every environment.

#: The fields of a secret volume source or projection (and Helm's {create, name} idiom).
_VOLUME_REF = frozenset({"secretName", "name", "items", "defaultMode", "optional", "create", "enabled"})
#: The fields of a volume's ``items`` entry (a key of the Secret and where it is mounted).
_ITEM_REF = frozenset({"key", "path", "mode"})
#: The fields of an object reference (``secrets: [{name: ...}]``), and of an ECS container's
#: ``secrets: [{name: DB_PASSWORD, valueFrom: <parameter ARN>}]``, which names where it is kept.
_OBJECT_REF = frozenset({"name", "namespace", "kind", "apiVersion", "uid", "fieldPath", "resourceVersion", "valueFrom"})
_SCALARS = (str, int, float, bool, type(None))


def is_reference(value: Any) -> bool:
    """``value`` (found under a secret-sounding key) is a reference to secrets, not a secret:
    a mapping of reference fields only (``{secretName: tls, items: [{key: tls.crt, path: tls.crt}]}``)
    or a non-empty list of object references (``[{name: regcred}]``)."""
    if value.__class__ is dict:
        if not value or not value.keys() <= _VOLUME_REF:
            return False
        items = value.get("items", [])
        if items.__class__ is not list or not all(item.__class__ is dict and item.keys() <= _ITEM_REF for item in items):
            return False
        return all(isinstance(v, _SCALARS) for k, v in value.items() if k != "items")
    if value.__class__ is list:
        return bool(value) and all(
            item.__class__ is dict and item and item.keys() <= _OBJECT_REF and all(isinstance(v, _SCALARS) for v in item.values()) for item in value
        )
    return False


def secret_pair(mapping: Any, names: SecretNames, other: Any = None) -> bool:
    """``mapping`` (or ``other``, the same mapping on the other side) names a secret setting:
    ``{name: DB_PASSWORD, value: ...}``."""
    if mapping.__class__ is not dict or (mapping.keys() <= _KEY_REF and (other.__class__ is not dict or other.keys() <= _KEY_REF)):
        # {name: db-secret, key: password}: a secretKeyRef names a secret and holds none.
        return False
    for key in _PAIR_NAMES:
        name = mapping.get(key)
        if name.__class__ is str and names.is_secret(name):
            return True
        if other.__class__ is dict:
            name_b = other.get(key)
            if name_b != name and name_b.__class__ is str and names.is_secret(name_b):
                return True
    return False


def is_secret_object(key: object) -> bool:
    """``key`` is the identity of a Kubernetes Secret (``v1/Secret/shop/db``)."""
    return isinstance(key, str) and "/Secret/" in key and key.split("/")[-3:-2] == ["Secret"] and key.count("/") >= 3


# -- weak secret values ----------------------------------------------------------------------
#
# A secret whose value is a placeholder ("sentry", "changeme", "1234") is a finding of its own,
# and redacting it as a substring would shred every name that contains it (getsentry/sentry:24).
# Such a value is redacted only where it stands as a whole token.

#: Below this many characters a value is weak whatever it is made of.
MIN_STRONG_LENGTH = 8
#: One word of letters, or only digits, up to this long, is weak: a word or a PIN.
_WORD_LENGTH = 16
_WORD = re.compile(r"[A-Za-z]+|[0-9]+")
#: Values committed as placeholders for a credential (lower case, digits and punctuation at the
#: end ignored: "Password123!" reads "password").
_PLACEHOLDERS = frozenset(
    {"changeme", "changeit", "password", "passw0rd", "secret", "admin", "root", "test", "example", "default", "letmein", "qwerty", "welcome"}
    | {"dummy", "placeholder", "todo", "fixme", "none", "null", "undefined", "xxx", "replaceme", "insecure", "notsecret", "devpassword"}
)
_TRAILING = re.compile(r"[\d\W_]+$")
#: Characters that continue a token: a name, path, host or image reference. A weak value is
#: redacted only where neither neighbour is one of these, or it opens a URL's authority
#: (``https://sentry@host``, ``user:sentry@db``, ``=sentry``, a whole value), never inside
#: ``getsentry/sentry:24``, ``sentry-web`` or ``sentry.example.com``.
_TOKEN_CHAR = r"[\w./+~-]"


def is_weak(value: Any) -> bool:
    """``value`` is too short or too common to be a real credential."""
    text = value if isinstance(value, str) else str(value)
    if len(text) < MIN_STRONG_LENGTH:
        return True
    if len(text) <= _WORD_LENGTH and _WORD.fullmatch(text):
        return True
    lowered = text.lower()
    return lowered in _PLACEHOLDERS or _TRAILING.sub("", lowered) in _PLACEHOLDERS or len(set(lowered)) <= 2


def token_pattern(values: Iterable[str]) -> re.Pattern[str] | None:
    """A pattern matching any of ``values`` where it stands as a whole token (longest first)."""
    forms = sorted({value for value in values if value}, key=len, reverse=True)
    if not forms:
        return None
    return re.compile(f"(?:(?<!{_TOKEN_CHAR})|(?<=://))(?:{'|'.join(map(re.escape, forms))})(?!{_TOKEN_CHAR})")
