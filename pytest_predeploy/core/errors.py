"""Errors a user can cause. Each one is rendered as a message, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable


class PredeployError(Exception):
    """Base of every error we raise on purpose; its text is meant for the user."""


class ConfigError(PredeployError):
    """predeploy.yaml (or a file it names) is wrong: the message names file, line and field."""


class ArtifactError(PredeployError):
    """An artifact is missing or malformed: the message names the file and the field."""

    def __init__(self, path: object, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class StepError(PredeployError):
    """A protocol step could not complete: the message names the step and what to do."""


#: Exit status of a command whose input (config, arguments) is wrong: nothing was changed.
EXIT_USAGE = 2
#: Exit status after Ctrl-C or SIGTERM (128 + SIGINT, as a shell reports it).
EXIT_INTERRUPTED = 130


def run_reporting_errors(main: Callable[[], int], prog: str) -> int:
    """Run a command's ``main`` (the ``predeploy`` CLI, a step script, the local target): our
    errors become the one line ``<prog>: error: <message>`` and exit 2, never a traceback;
    an interrupt becomes ``<prog>: interrupted`` and 130."""
    try:
        return int(main())
    except PredeployError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
