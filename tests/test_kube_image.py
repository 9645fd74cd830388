"""The base image's file list, assembled from the interpreter running the tests (no container
engine needed): what goes in, and the messages for distributions it cannot hold."""

from __future__ import annotations

import os
import sys

import pytest

from pytest_predeploy.targets.kube.image import SITE, ImageSettingError, _base_rootfs, _content_hash, _distribution_files


def test_the_base_holds_the_interpreter_its_loader_and_the_named_distributions() -> None:
    rootfs = _base_rootfs(["filelock"])
    interpreter = os.path.realpath(sys.executable).lstrip("/")
    assert rootfs.entries[interpreter].kind == "file"
    assert rootfs.entries["usr/local/bin/python3"].target == "/" + interpreter
    assert any(name.endswith("os.py") for name in rootfs.entries)
    assert any("/libc.so" in name for name in rootfs.entries)  # from ldd
    assert f"{SITE.lstrip('/')}/filelock/__init__.py" in rootfs.entries
    assert not any("/test/" in name or name.endswith(".pyc") for name in rootfs.entries)
    # No entry's path passes through a symlink (a tar cannot be extracted through one).
    links = {name for name, entry in rootfs.entries.items() if entry.kind == "link"}
    assert not [name for name in rootfs.entries if any(name.startswith(link + "/") for link in links)]


def test_the_content_hash_depends_on_the_distributions() -> None:
    assert _content_hash(_base_rootfs(["filelock"])) == _content_hash(_base_rootfs(["filelock"]))
    assert _content_hash(_base_rootfs(["filelock"])) != _content_hash(_base_rootfs([]))


def test_a_distribution_that_is_not_installed_names_the_setting() -> None:
    with pytest.raises(
        ImageSettingError, match=r"staging.kube.distributions: no-such-dist-xyz is not installed where pytest runs .*pip install no-such-dist-xyz"
    ):
        _distribution_files(["no-such-dist-xyz"])


def test_a_compiled_distribution_is_refused() -> None:
    with pytest.raises(ImageSettingError, match=r"staging.kube.distributions: pydantic-core is not pure Python \(pydantic_core/.*\.so\)"):
        _distribution_files(["pydantic-core"])


def test_dependencies_of_a_distribution_come_along() -> None:
    top = {rel.split("/")[0] for _, rel in _distribution_files(["markdown-it-py"])}
    assert {"markdown_it", "mdurl"} <= top  # markdown-it-py requires mdurl
