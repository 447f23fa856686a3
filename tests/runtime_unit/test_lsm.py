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


def test_apparmor_profile_is_not_written_to_a_fake_proc_file(monkeypatch, tmp_path):
    """Escape 5 (fake /proc): a plain file where /proc/self/attr/apparmor/exec should be
    would swallow the profile and the process would run unconfined; a naive
    open-and-write succeeds silently, ketch refuses because fstatfs says not procfs."""
    fake = tmp_path / "proc" / "self" / "attr" / "apparmor" / "exec"
    fake.parent.mkdir(parents=True)
    fake.write_text("")
    monkeypatch.setattr(lsm, "APPARMOR_EXEC_ATTRS", (str(fake),))
    with pytest.raises(KetchError, match="is not on procfs"):
        lsm.apply_apparmor("docker-default")
    assert fake.read_text() == ""


def test_procfs_writes_are_verified(tmp_path):
    import os

    from ketch.runtime import syscalls
    from ketch.runtime.linux import procfs

    sc = syscalls.linux()
    os.close(procfs.open_procfs(sc, "/proc/self/status", os.O_RDONLY))
    plain = tmp_path / "oom_score_adj"
    plain.write_text("0\n")
    with pytest.raises(procfs.ProcfsError, match=r"process.oomScoreAdj: .* is not on procfs"):
        procfs.write_procfs(sc, str(plain), "-500", "process.oomScoreAdj")
    assert plain.read_text() == "0\n"
    # a symlink as the last component is not followed, even to the real file
    (tmp_path / "link").symlink_to("/proc/self/oom_score_adj")
    with pytest.raises(procfs.ProcfsError, match=r"open .*link"):
        procfs.write_procfs(sc, str(tmp_path / "link"), "0", "process.oomScoreAdj")


def test_exec_refuses_a_new_label_without_selinux_but_not_the_containers_own(monkeypatch):
    monkeypatch.setattr(lsm, "selinux_enabled", lambda: False)
    monkeypatch.setattr(lsm, "apparmor_enabled", lambda: False)
    with pytest.raises(KetchError) as info:
        lsm.check_exec_lsm({"selinuxLabel": "new"}, "own")
    assert str(info.value) == ("selinux label is specified in config, but selinux is disabled "
                               "or not supported")  # runc's words
    lsm.check_exec_lsm({"selinuxLabel": "own"}, "own")  # create warned about it already
    with pytest.raises(KetchError, match="AppArmor is not enabled"):
        lsm.check_exec_lsm({"apparmorProfile": "p"})
    monkeypatch.setattr(lsm, "selinux_enabled", lambda: True)
    with pytest.raises(KetchError, match="not supported yet"):
        lsm.check_exec_lsm({"selinuxLabel": "new"})
