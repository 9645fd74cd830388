"""Command-line and path templates from the config: ``{name}`` placeholders, checked against the
names a field allows when the config is loaded and filled in when a step runs.

Every configured command (the steps, an environment's refresh and capture, a local service) and
path template (a release source's folder or dist) goes through here. The caller names its field
(``steps.deploy.command``, ``template 'dist/{service}'`` ...); every :class:`TemplateError` text
starts with that name, so the caller adds only where the field lives (the config file).
"""

from __future__ import annotations

import re
import shlex
import string
from collections.abc import Iterable, Mapping


class TemplateError(ValueError):
    """A template that cannot be used: the text names the field and says what to do.

    A ``ValueError`` so that a pydantic validator can raise it as it is."""


def allowed_text(names: Iterable[str]) -> str:
    """``{a}, {b}, {c}``: the placeholders a field allows, sorted."""
    return ", ".join("{" + name + "}" for name in sorted(names))


#: A placeholder is a plain name: no attribute or index (``{release.__class__}``, ``{env[0]}``)
#: that would read Python objects into a command or a message.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: The only format specs allowed: alignment and a width or precision under 100 (``{release:.7}``,
#: ``{service:<12}``). Anything else could nest a placeholder the load-time check never sees, or
#: ask for a width of 300,000,000 characters.
_SPEC = re.compile(r"[<>^]?[0-9]{0,2}(?:\.[0-9]{1,2})?")
#: How much of a refused placeholder a message shows.
_SHOWN = 40


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}... ({len(text)} characters)"


def placeholders(template: str, field: str = "template") -> set[str]:
    """The names of ``template``'s placeholders; TemplateError naming ``field`` when one is not a
    plain name, has a conversion (``!r``) or a format spec outside the small allowed set."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(f"{field} is not a valid format string ({exc})") from None
    names = set()
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name and not _NAME.fullmatch(name):
            raise TemplateError(f"{field}: placeholder {{{_shown(name)}}} is not a plain name; use plain placeholders such as {{release}}")
        if conversion:
            raise TemplateError(f"{field}: placeholder {{{_shown(name)}!{conversion}}} has a conversion; use plain placeholders such as {{release}}")
        if spec and not _SPEC.fullmatch(spec):
            raise TemplateError(
                f"{field}: placeholder {{{_shown(name + ':' + spec)}}} has a format spec that is not allowed "
                "(only an alignment and a width or precision under 100, e.g. {release:.7})"
            )
        names.add(name)
    return names


def check(template: str, allowed: Iterable[str], field: str) -> set[str]:
    """``template``'s placeholders; TemplateError when one is not in ``allowed`` or the template
    cannot be parsed. Run when the config is loaded, so a typo stops the run before any step."""
    allowed = set(allowed)
    try:
        names = placeholders(template, field)
    except TemplateError as exc:
        raise TemplateError(f"{exc}; allowed: {allowed_text(allowed)}") from None
    unknown = names - allowed
    if unknown:
        raise TemplateError(f"{field} uses unknown placeholder {{{sorted(unknown)[0]}}}; allowed: {allowed_text(allowed)}")
    return names


def check_command(command: str, allowed: Iterable[str], field: str) -> set[str]:
    """:func:`check` for a command: it must also split into at least one word (the program)."""
    names = check(command, allowed, field)
    if not split(command, field):
        raise TemplateError(f"{field} is empty; name the program to run (e.g. {{python}} scripts/run.py)")
    return names


def fill(template: str, values: Mapping[str, str], field: str) -> str:
    """``template`` with its placeholders filled from ``values`` (format specs apply, as in
    ``str.format``); TemplateError naming ``field`` when one has no value or the template is malformed."""
    placeholders(template, field)  # never fill what the load-time check would refuse
    try:
        return template.format_map(values)
    except KeyError as exc:
        raise TemplateError(f"{field}: placeholder {{{exc.args[0]}}} has no value here") from None
    except IndexError:
        raise TemplateError(f"{field}: a placeholder without a name ({{}} or {{0}}) has no value; name one of {allowed_text(values)}") from None
    except (ValueError, AttributeError, TypeError) as exc:
        raise TemplateError(f"{field} cannot be filled in ({exc}); use plain placeholders such as {{release}}") from None


def split(command: str, field: str) -> list[str]:
    """``command`` split into words like a shell line (no shell is involved)."""
    try:
        return shlex.split(command)
    except ValueError as exc:
        raise TemplateError(f"{field} cannot be split into words: {exc}") from None


def fill_command(command: str, values: Mapping[str, str], field: str) -> list[str]:
    """The argv of a command template: split into words, then each word filled in (a value with
    spaces stays one word)."""
    return [fill(word, values, field) for word in split(command, field)]


def fill_known(value: str, values: Mapping[str, str]) -> str:
    """``value`` with each ``{name}`` of ``values`` filled in and every other brace kept as
    written: for free text such as an environment variable's value, which may hold JSON."""
    for name, filled in values.items():
        value = value.replace("{" + name + "}", filled)
    return value
