"""What a report item shows of a value: JSON-safe, bounded in size, and redacted at every depth."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from pytest_predeploy.core.redact import Redactor
from pytest_predeploy.intake.parity.diff import _MISSING
from pytest_predeploy.intake.parity.inputs import _type_name
from pytest_predeploy.intake.parity.paths import ListPos, _segment_text
from pytest_predeploy.intake.parity.report import ParityValue
from pytest_predeploy.intake.parity.secretkeys import _PAIR_SHOWN, is_reference, secret_pair, token_pattern
from pytest_predeploy.intake.secrets import SecretNames, assignment_secret

#: How much of a value a report item shows.
_SHOW_CHARS = 300
_SHOW_ITEMS = 20
#: Characters (and entries) one shown value may take in all: 20 entries on each of 4 levels of
#: 300-character strings would otherwise make one item megabytes long.
_SHOW_BUDGET = 4000


REDACTED = "[REDACTED]"


class _Shower:
    """Turns values into report views: JSON-safe, shortened, and redacted at every depth: a value
    under a secret key is replaced by ``[REDACTED]``, and a known secret value (from a secrets
    source or found under a secret key anywhere in either tree) by ``[REDACTED:<where>]``,
    also inside a longer string (a DSN) or as a number. A weak value (``weak``: tag -> value,
    see ``is_weak``) is redacted only where it stands as a whole token."""

    def __init__(
        self, redactor: Redactor, secret_step: Callable[[tuple[Any, ...]], bool], numbers: set[str], names: SecretNames, weak: Mapping[str, str] | None = None
    ) -> None:
        self._redactor = redactor
        self._weak = token_pattern((weak or {}).values())
        self._weak_tags = {value: f"[REDACTED:{tag}]" for tag, value in (weak or {}).items()}
        self._names = names
        self._secret_step = secret_step
        self._numbers = numbers
        self.truncated = False
        self._budget = _SHOW_BUDGET

    def view(self, value: Any, secret: bool = False, path: tuple[Any, ...] = ()) -> ParityValue | None:
        if value is _MISSING:
            return None
        if secret:
            return ParityValue.model_construct(type=_type_name(value), redacted=True)
        self.truncated = False
        self._budget = _SHOW_BUDGET
        shown = self._json(value, 0, path)
        return ParityValue.model_construct(type=_type_name(value), value=shown, truncated=self.truncated)

    def _weak_tag(self, match: re.Match[str]) -> str:
        return self._weak_tags[match.group(0)]

    def _key(self, key: Any) -> str:
        text = self._text(_segment_text(key))
        self._budget -= len(text)
        return text[:_SHOW_CHARS] + "..." if len(text) > _SHOW_CHARS else text

    def _text(self, text: str) -> str:
        """``text`` with every known secret value redacted."""
        text = self._redactor.redact(text) if self._redactor else text
        if self._weak is not None:
            text = self._weak.sub(self._weak_tag, text)
        if "=" in text and assignment_secret(text, self._names):
            text = text.split("=", 1)[0] + "=" + REDACTED
        return text

    def _json(self, value: Any, depth: int, path: tuple[Any, ...]) -> Any:
        if self._budget <= 0:
            self.truncated = True
            return "..."
        self._budget -= 1
        if isinstance(value, str):
            text = self._text(value)
            if len(text) > _SHOW_CHARS:
                self.truncated = True
                text = text[:_SHOW_CHARS] + "..."
            self._budget -= len(text)
            return text
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and self._numbers and str(value) in self._numbers:
            return REDACTED
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if isinstance(value, (datetime, date)):
            return self._json(value.isoformat(), depth, path)
        if isinstance(value, (bytes, bytearray)):
            return f"<{len(value)} bytes>"
        if isinstance(value, (dict, list)):
            if depth >= 4:
                self.truncated = True
                return "..."
            pairs = list(value.items()) if isinstance(value, dict) else [(ListPos(None, i), v) for i, v in enumerate(value)]
            if len(pairs) > _SHOW_ITEMS:
                self.truncated = True
                pairs = pairs[:_SHOW_ITEMS]
            pair = isinstance(value, dict) and secret_pair(value, self._names)
            shown: list[tuple[Any, Any]] = []
            for k, v in pairs:
                if self._budget <= 0:
                    self.truncated = True
                    break
                hidden = (pair and k not in _PAIR_SHOWN) or (self._secret_step((*path, k)) and not is_reference(v))
                shown.append((k, REDACTED if hidden else self._json(v, depth + 1, (*path, k))))
            if isinstance(value, dict):
                return {self._key(k): v for k, v in shown}
            return [v for _, v in shown]
        return self._json(str(value), depth, path)
