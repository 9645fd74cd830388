"""Secrets recognised by their content, whatever key or variable holds them.

A secret under an innocent name (``database.url: postgres://app:PW@db/shop``, a PEM key in a
``tls:`` block, a ``ghp_`` token in a CI variable) is invisible to rules about names. The
token formats come from detect-secrets' plugins (a dependency already: the security audit runs
it): their patterns, copied (see DETECT_SECRETS_PATTERNS), with the whole match where that match
is the secret; the rest are small rules of ours for what those plugins miss or report only in part (the body of a PEM
block, a whole JWT, ``Password=`` in a connection string, ``--password=VALUE``, a Sentry DSN's
key, a webhook URL's token). Only the secret part is returned, so a redacted DSN still says
which host it points at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ahocorasick_rs import AhoCorasick

#: A found value shorter than this is not taken (``--password=x`` in a usage text).
MIN_FOUND = 6

# Words that make an argument, a connection-string field or a query parameter secret. Kept short
# and specific: ``--token-ttl=30`` and ``key=name`` must not be taken for secrets.
_SECRET_WORD = r"(?:password|passwd|pwd|passphrase|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|client[-_]?secret|auth[-_]?token)"


@dataclass(frozen=True)
class _Rule:
    kind: str
    #: Substrings (lower case) one of which the text must hold for the pattern to be tried:
    #: finding them is far cheaper than a regex search, and most text holds none.
    hints: tuple[str, ...]
    pattern: re.Pattern[str]
    group: int = 0


#: detect-secrets' patterns (plugin class, pattern, flags), copied: importing detect_secrets costs
#: ~90 ms (it imports requests), paid at the start of every run and every step script, and these
#: few strings are all we use of it. tests/test_leaks.py checks them against the installed plugins.
DETECT_SECRETS_PATTERNS: tuple[tuple[str, tuple[str, ...], str, str, int, int], ...] = (
    (
        "password in a URL",
        ("@",),
        "BasicAuthDetector",
        "://[^:/\\?\\#\\[\\]@!\\$\\&'\\(\\)\\*\\+,;=\\s]+:([^:/\\?\\#\\[\\]@!\\$\\&'\\(\\)\\*\\+,;=\\s]+)@",
        0,
        1,
    ),
    ("GitHub token", ("gh",), "GitHubTokenDetector", "(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9_]{36}", 0, 0),
    ("GitLab token", ("gl", "gr1348941"), "GitLabTokenDetector", "(glpat|gldt|glft|glsoat|glrt)-[A-Za-z0-9_\\-]{20,50}(?!\\w)", 0, 0),
    ("GitLab token", ("gl", "gr1348941"), "GitLabTokenDetector", "GR1348941[A-Za-z0-9_\\-]{20,50}(?!\\w)", 0, 0),
    ("GitLab token", ("gl", "gr1348941"), "GitLabTokenDetector", "glcbt-([0-9a-fA-F]{2}_)?[A-Za-z0-9_\\-]{20,50}(?!\\w)", 0, 0),
    ("GitLab token", ("gl", "gr1348941"), "GitLabTokenDetector", "glimt-[A-Za-z0-9_\\-]{25}(?!\\w)", 0, 0),
    ("GitLab token", ("gl", "gr1348941"), "GitLabTokenDetector", "glptt-[A-Za-z0-9_\\-]{40}(?!\\w)", 0, 0),
    ("GitLab token", ("gl", "gr1348941"), "GitLabTokenDetector", "glagent-[A-Za-z0-9_\\-]{50,1024}(?!\\w)", 0, 0),
    ("GitLab token", ("gl", "gr1348941"), "GitLabTokenDetector", "gloas-[A-Za-z0-9_\\-]{64}(?!\\w)", 0, 0),
    ("Slack token", ("xox", "hooks.slack.com"), "SlackDetector", "xox(?:a|b|p|o|s|r)-(?:\\d+-)+[a-z0-9]+", re.IGNORECASE, 0),
    (
        "Slack token",
        ("xox", "hooks.slack.com"),
        "SlackDetector",
        "https://hooks\\.slack\\.com/services/T[a-zA-Z0-9_]+/B[a-zA-Z0-9_]+/[a-zA-Z0-9_]+",
        re.IGNORECASE | re.VERBOSE,
        0,
    ),
    ("Stripe key", ("_live_",), "StripeDetector", "(?:r|s)k_live_[0-9a-zA-Z]{24}", 0, 0),
    ("OpenAI key", ("t3blbkfj",), "OpenAIDetector", "sk-[A-Za-z0-9-_]*[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}", 0, 0),
    ("PyPI token", ("pypi-",), "PypiTokenDetector", "pypi-AgEIcHlwaS5vcmc[A-Za-z0-9-_]{70,}", 0, 0),
    ("PyPI token", ("pypi-",), "PypiTokenDetector", "pypi-AgENdGVzdC5weXBpLm9yZw[A-Za-z0-9-_]{70,}", 0, 0),
    ("SendGrid key", ("sg.",), "SendGridDetector", "SG\\.[a-zA-Z0-9_-]{22}\\.[a-zA-Z0-9_-]{43}", 0, 0),
    ("Square token", ("sq0csp-",), "SquareOAuthDetector", "sq0csp-[0-9A-Za-z\\\\\\-_]{43}", 0, 0),
    ("Azure storage key", ("accountkey=",), "AzureStorageKeyDetector", "AccountKey=[a-zA-Z0-9+\\/=]{88}", 0, 0),
)


_WORDS = ("pass", "pwd", "secret", "token", "key")
_RULES: tuple[_Rule, ...] = (
    # A URL's userinfo password (postgres://app:PW@db/shop, https://user:TOKEN@ci/job) and the
    # token formats of GitHub, GitLab, Slack, Stripe, OpenAI, PyPI, SendGrid, Square and Azure.
    *(_Rule(kind, hints, re.compile(pattern, flags), group) for kind, hints, _, pattern, flags, group in DETECT_SECRETS_PATTERNS),
    # detect-secrets' PrivateKeyDetector reports the BEGIN line only; the key is the block.
    _Rule(
        "private key",
        ("private key",),
        re.compile(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?-----END[A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----", re.DOTALL),
    ),
    # Its JWT pattern stops before the signature; a JWT is three base64url parts, two of JSON.
    _Rule("JWT", ("eyj",), re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")),
    # A Sentry DSN: https://KEY@o1.ingest.sentry.io/2 (the key alone in the userinfo).
    _Rule("Sentry DSN key", ("@",), re.compile(r"://([0-9a-f]{32})(?::[0-9a-f]{32})?@", re.IGNORECASE), 1),
    # Password=...; in an ADO.NET / JDBC / ODBC connection string, or a query parameter.
    _Rule(
        "password in a connection string",
        _WORDS,
        re.compile(rf"(?<![A-Za-z]){_SECRET_WORD}\s*=\s*([^;&\s\"'<>\[][^;&\s\"'<>]*)", re.IGNORECASE),
        1,
    ),
    # --password=VALUE, --db-password VALUE, -p is too short to tell from anything else.
    _Rule("password argument", ("--",), re.compile(rf"--(?:[A-Za-z0-9]+[-_])*{_SECRET_WORD}(?:=|\s+)([^\s\"'\[-][^\s\"']*)", re.IGNORECASE), 1),
    # Webhook URLs whose path is the credential (Discord, Microsoft Teams, generic /hooks/ or
    # /webhooks/ endpoints): the token segment after the hook's id.
    _Rule("webhook token", ("hook",), re.compile(r"/(?:api/)?web-?hooks?/[A-Za-z0-9_-]+/([A-Za-z0-9_-]{16,})", re.IGNORECASE), 1),
)


#: Every rule's hints in one automaton: one C pass over the text says which rules to try.
_HINTS = sorted({hint for rule in _RULES for hint in rule.hints})
_HINT_FINDER = AhoCorasick(_HINTS)


def secrets_in(text: str) -> Iterator[tuple[str, str]]:
    """``(kind, value)`` for each secret recognised by its content in ``text``."""
    present = {_HINTS[index] for index, _, _ in _HINT_FINDER.find_matches_as_indexes(text.lower(), overlapping=True)}
    if not present:
        return
    for rule in _RULES:
        if present.isdisjoint(rule.hints):
            continue
        for match in rule.pattern.finditer(text):
            value = match.group(rule.group)
            if value and len(value) >= MIN_FOUND:
                yield rule.kind, value
