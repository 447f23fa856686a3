"""AppArmor and SELinux requests: refused or reported, never silently dropped."""

from __future__ import annotations

import pytest

from ketch.runtime.errors import KetchError
from ketch.runtime.linux import lsm


def test_apparmor_profile_without_apparmor_is_an_error(monkeypatch):
    monkeypatch.setattr(lsm, "apparmor_enabled", lambda: False)
    with pytest.raises(KetchError, match="AppArmor is not enabled"):
        lsm.check_lsm({"process": {"apparmorProfile": "p"}}, lambda m: None)


def test_selinux_labels_warn_without_selinux_and_fail_with_it(monkeypatch):
    spec = {"process": {"selinuxLabel": "l"}, "linux": {"mountLabel": "m"}}
    warnings: list[str] = []
    monkeypatch.setattr(lsm, "selinux_enabled", lambda: False)
    lsm.check_lsm(spec, warnings.append)
    assert warnings == ["process.selinuxLabel is ignored: SELinux is not enabled on this host",
                        "linux.mountLabel is ignored: SELinux is not enabled on this host"]
    monkeypatch.setattr(lsm, "selinux_enabled", lambda: True)
    with pytest.raises(KetchError, match="not supported yet"):
        lsm.check_lsm(spec, warnings.append)


def test_nothing_requested_nothing_said(monkeypatch):
    warnings: list[str] = []
    lsm.check_lsm({"process": {}}, warnings.append)
    assert warnings == []


def test_procfs_check_recognises_proc():
    import os

    assert lsm._is_procfs(os.stat("/proc/self/status").st_dev)
    assert not lsm._is_procfs(os.stat("/").st_dev)
