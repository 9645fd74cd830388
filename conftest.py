"""Repo-level wiring only: keep pytest out of folders that are not this project's tests."""

collect_ignore = ["demo", "bench", "scripts", "docs", ".artifacts", ".staging", "build"]
