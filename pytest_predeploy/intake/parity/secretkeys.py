"""Secrets recognised by the shape of a mapping rather than a key name: a Kubernetes Secret's
data, and ``{name: DB_PASSWORD, value: ...}`` pairs. Shared by the differ and the policy.
"""

from __future__ import annotations

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


def secret_pair(mapping: Any, names: SecretNames, other: Any = None) -> bool:
    """``mapping`` (or ``other``, the same mapping on the other side) names a secret setting:
    ``{name: DB_PASSWORD, value: ...}``."""
    if mapping.__class__ is not dict:
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
