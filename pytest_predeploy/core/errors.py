"""Errors a user can cause. Each one is rendered as a message, never a traceback."""

from __future__ import annotations


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
