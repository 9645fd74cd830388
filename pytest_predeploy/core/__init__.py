"""The base every other part builds on: errors, config field types, YAML reading, redaction,
the subprocess runner, artifact names and atomic writes, and the run state. Imports nothing
else of the package."""
