"""Licences of distributions as SPDX expressions, and a policy verdict on each expression.

Where a licence is read, best first: the ``License-Expression`` field (core metadata 2.4, PEP 639),
the ``License`` field when it is a valid SPDX expression or a common short name, the trove
classifiers when every licence classifier names one licence unambiguously, and then the licence
texts the distribution carries (its ``License-File`` entries, or the ``LICENSE*``/``COPYING*``
files beside an older METADATA, or a ``License`` field holding a whole text), identified with
spdx-matcher against the SPDX licence list's templates (the SPDX matching guidelines: copyright
lines, whitespace and bullets do not matter). Several texts, or several licences in one, are
read as all applying (AND): that is the strictest reading. Anything else is ``UNKNOWN``, which is
a finding: "BSD License" alone does not say which BSD licence, and a text no SPDX licence
matches may say anything.

spdx-matcher finds a licence's text inside a file; terms a file adds after a standard licence
text are not noticed. A team that must see them reads the licence files the SBOM names.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from email.message import Message
from fnmatch import fnmatchcase
from importlib.metadata import Distribution
from typing import Literal, cast

import spdx_matcher  # type: ignore[import-untyped]  # ships no type information
from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

UNKNOWN = "UNKNOWN"
#: notice: allowed, and recorded in the report (weak copyleft used as an unmodified dependency).
Verdict = Literal["allow", "notice", "review", "unlisted", "deny"]
_RANK: dict[Verdict, int] = {"allow": 0, "notice": 1, "review": 2, "unlisted": 3, "deny": 4}

#: Licence classifiers that name exactly one SPDX licence.
CLASSIFIERS = {
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: MIT No Attribution License (MIT-0)": "MIT-0",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
    "License :: OSI Approved :: Apache Software License": "Apache-2.0",
    "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "License :: OSI Approved :: Python Software Foundation License": "PSF-2.0",
    "License :: OSI Approved :: The Unlicense (Unlicense)": "Unlicense",
    "License :: OSI Approved :: Zope Public License": "ZPL-2.1",
    "License :: OSI Approved :: GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "License :: OSI Approved :: GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "License :: OSI Approved :: GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "License :: OSI Approved :: GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "License :: OSI Approved :: GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "License :: OSI Approved :: GNU Affero General Public License v3": "AGPL-3.0-only",
    "License :: OSI Approved :: GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "License :: OSI Approved :: Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "License :: OSI Approved :: European Union Public Licence 1.2 (EUPL 1.2)": "EUPL-1.2",
    "License :: CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
}

#: Short names found in the free-text License field that name one licence.
ALIASES = {
    "mit license": "MIT",
    "the mit license": "MIT",
    "apache 2.0": "Apache-2.0",
    "apache 2": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache software license 2.0": "Apache-2.0",
    "psfl": "PSF-2.0",
    "psf": "PSF-2.0",
    "mpl 2.0": "MPL-2.0",
    "bsd 3-clause": "BSD-3-Clause",
    "bsd-3": "BSD-3-Clause",
    "new bsd": "BSD-3-Clause",
    "bsd 2-clause": "BSD-2-Clause",
}


def _spdx(text: str) -> str | None:
    try:
        return canonicalize_license_expression(text)
    except InvalidLicenseExpression:
        return None


def read_license(metadata: Message) -> tuple[str, str]:
    """(SPDX expression or UNKNOWN, where it was read or why it is unknown)."""
    expression = (metadata.get("License-Expression") or "").strip()
    if expression:
        spdx = _spdx(expression)
        if spdx:
            return spdx, "License-Expression"
        return UNKNOWN, f"License-Expression {expression[:80]!r} is not a valid SPDX expression"
    text = (metadata.get("License") or "").strip()
    if text and "\n" not in text and text.upper() != UNKNOWN:
        spdx = _spdx(text) or ALIASES.get(text.lower())
        if spdx:
            return spdx, "License"
    classifiers = [c for c in metadata.get_all("Classifier") or [] if c.startswith("License ::")]
    mapped = [CLASSIFIERS.get(c) for c in classifiers]
    if classifiers and all(mapped):
        ids = sorted(set(m for m in mapped if m))
        return " OR ".join(ids), "classifiers"
    if classifiers:
        unclear = [c.rsplit(" :: ", 1)[-1] for c, m in zip(classifiers, mapped, strict=False) if not m]
        return UNKNOWN, f"classifier {', '.join(unclear)} does not name one SPDX licence"
    if text and text.upper() != UNKNOWN:
        return UNKNOWN, f"License field {text.splitlines()[0][:60]!r} is not an SPDX expression"
    return UNKNOWN, "no licence metadata"


#: The names of licence files beside an older METADATA (no License-File field).
_LICENCE_FILE = re.compile(r"^(LICEN[CS]E|COPYING)", re.IGNORECASE)
#: Licence texts past this size are not read: the longest licences (GPL-3.0, AGPL-3.0) are ~35 KiB,
#: and matching takes about 0.6 s per KiB of text that resembles a licence.
_MAX_TEXT = 64 * 1024


@functools.lru_cache(maxsize=256)
def _identify(text: str) -> list[str]:
    """The SPDX ids (with their exceptions) whose standard text ``text`` holds; the same text
    (the Pallets projects share one) is matched once per audit."""
    found, _ = spdx_matcher.analyse_license_text(text[:_MAX_TEXT])
    ids = sorted(str(name) for name in found.get("licenses", {}))
    exceptions = sorted(str(name) for name in found.get("exceptions", {}))
    if len(ids) == 1 and len(exceptions) == 1:
        return [f"{ids[0]} WITH {exceptions[0]}"]
    return ids if not exceptions else []  # an exception we cannot attach to one licence: not identified


def _licence_texts(dist: Distribution, metadata: Message) -> list[tuple[str, str | None]]:
    """(file as shown, its text or None when it cannot be read) for each licence text the
    distribution carries: PEP 639 License-File entries (under ``licenses/``; older tools put
    them beside METADATA), else the LICENSE*/COPYING* files of its dist-info folder."""
    declared = [str(name) for name in metadata.get_all("License-File") or []]
    if declared:
        found: list[tuple[str, str | None]] = []
        for name in declared:
            for candidate in (f"licenses/{name}", name):
                text = dist.read_text(candidate)
                if text is not None:
                    found.append((candidate, text))
                    break
            else:
                found.append((f"licenses/{name}", None))
        return found
    beside = sorted(path.name for path in dist.files or [] if len(path.parts) == 2 and path.parts[0].endswith(".dist-info") and _LICENCE_FILE.match(path.name))
    return [(name, dist.read_text(name)) for name in beside]


def _from_texts(texts: list[tuple[str, str | None]]) -> tuple[str | None, str]:
    """(the SPDX expression the texts grant, or None, and what was read or why it is unknown)."""
    ids: set[str] = set()
    for name, text in texts:
        if text is None:
            return None, f"{name} (License-File) cannot be read"
        found = _identify(text)
        if not found:
            return None, f"no SPDX licence matches the text of {name}"
        ids.update(found)
    expression = _spdx(" AND ".join(sorted(ids)))
    if expression is None:
        return None, f"the texts of {', '.join(name for name, _ in texts)} name {', '.join(sorted(ids))}, which is not an SPDX expression"
    shown = ", ".join(name for name, _ in texts)
    return expression, f"licence file{'s' if len(texts) > 1 else ''} {shown}"


def read_distribution_license(dist: Distribution) -> tuple[str, str]:
    """(SPDX expression or UNKNOWN, where it was read or why it is unknown) of an installed
    distribution: its metadata fields first (:func:`read_license`), then its licence texts."""
    # An installed distribution's metadata is an email.message.Message subclass (importlib.metadata's
    # _adapters.Message); Python 3.11's stubs declare only the smaller PackageMetadata protocol.
    metadata = cast(Message, dist.metadata)
    expression, source = read_license(metadata)
    if expression != UNKNOWN or source.startswith("License-Expression"):
        return expression, source  # a declared expression that is not SPDX stays what it says
    texts = _licence_texts(dist, metadata)
    field = (metadata.get("License") or "").strip()
    if not texts and "\n" in field:
        texts = [("the License field", field)]  # older setuptools put the whole text there
    if not texts:
        return UNKNOWN, source
    found, why = _from_texts(texts)
    if found is None:
        return UNKNOWN, f"{source}, and {why}"
    classifiers = [c.rsplit(" :: ", 1)[-1] for c in metadata.get_all("Classifier") or [] if c.startswith("License ::")]
    return found, f"{why} (the classifier says only {', '.join(classifiers)})" if classifiers else why


_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def _listed(key: str, patterns: set[str]) -> bool:
    return key in patterns or any(fnmatchcase(key, pattern) for pattern in patterns)


class _Evaluator:
    """SPDX expression -> verdict: OR takes the best branch, AND the worst; AND binds tighter.
    A licence on several lists takes the strictest: deny, then review, then notice, then allow."""

    def __init__(self, expression: str, allow: set[str], deny: set[str], review: set[str], notice: set[str]) -> None:
        self.tokens: list[str] = _TOKEN.findall(expression)
        self.pos = 0
        self.allow, self.deny, self.review, self.notice = allow, deny, review, notice

    def term(self, spdx_id: str) -> Verdict:
        base = spdx_id.split(" WITH ", 1)[0]
        for key in (spdx_id, base):
            if _listed(key, self.deny):
                return "deny"
            if _listed(key, self.review):
                return "review"
            if _listed(key, self.notice):
                return "notice"
            if _listed(key, self.allow):
                return "allow"
        return "unlisted" if self.allow else "allow"

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse_or(self) -> Verdict:
        verdicts = [self.parse_and()]
        while self.peek() == "OR":
            self.take()
            verdicts.append(self.parse_and())
        return min(verdicts, key=_RANK.__getitem__)

    def parse_and(self) -> Verdict:
        verdicts = [self.parse_atom()]
        while self.peek() == "AND":
            self.take()
            verdicts.append(self.parse_atom())
        return max(verdicts, key=_RANK.__getitem__)

    def parse_atom(self) -> Verdict:
        token = self.take()
        if token == "(":
            verdict = self.parse_or()
            self.take()  # ")": the expression was canonicalised, so it is balanced
            return verdict
        if self.peek() == "WITH":
            self.take()
            token = f"{token} WITH {self.take()}"
        return self.term(token)


def evaluate(expression: str, allow: Iterable[str], deny: Iterable[str], review: Iterable[str], notice: Iterable[str] = ()) -> Verdict:
    """The policy's verdict on a canonical SPDX expression; list items are SPDX ids or shell-style
    globs ('LGPL-*')."""
    lists = [{_spdx(item) or item for item in items} for items in (allow, deny, review, notice)]
    return _Evaluator(expression, *lists).parse_or()
