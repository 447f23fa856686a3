"""Seccomp filters end to end: applied in both load orders, and the runtime's own
last steps survive a filter that refuses what they would like to use."""

from __future__ import annotations

import pytest

from .conftest import Runtime


def _filter(nnp: bool, denied: list[str]):
    def edit(c: dict) -> None:
        c["process"]["noNewPrivileges"] = nnp
        c["root"]["readonly"] = False  # so only the filter can make mkdir fail
        c["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
            "syscalls": [{"names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
        }
    return edit


@pytest.mark.parametrize("nnp", [True, False])
def test_filter_applies_and_init_survives_without_close_range(ketch: Runtime, runc: Runtime,
                                                              make_bundle, nnp: bool) -> None:
    # close_range(2) is newer than many allow-lists: the init must fall back, not die
    cmd = ["sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; mkdir /tmp/x; echo rc=$?"]
    out = {}
    for rt in (runc, ketch):
        bundle = make_bundle(cmd, edit=_filter(nnp, ["close_range", "mkdir", "mkdirat"]),
                             name=f"sc-{rt.name}-{nnp}")
        r = rt("run", "-b", str(bundle), rt.new_id("seccomp"))
        out[rt.name] = (r.rc, r.out)
    assert out["ketch"] == out["runc"], out
    assert "Seccomp:\t2" in out["ketch"][1] and "rc=1" in out["ketch"][1]


def test_exec_gets_the_containers_filter(ketch: Runtime, make_bundle) -> None:
    bundle = make_bundle(["sleep", "1000"], edit=_filter(True, ["mkdir", "mkdirat"]))
    cid = ketch.new_id("scexec")
    assert ketch("run", "-d", "-b", str(bundle), cid).rc == 0
    r = ketch("exec", cid, "sh", "-c", "mkdir /tmp/y; echo rc=$?")
    ketch("delete", "-f", cid)
    assert r.out.strip().endswith("rc=1"), r


def test_unknown_action_is_refused_before_anything_exists(ketch: Runtime, make_bundle) -> None:
    def edit(c: dict) -> None:
        c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_BOGUS"}

    bundle = make_bundle(["true"], edit=edit)
    cid = ketch.new_id("scbad")
    r = ketch("run", "-b", str(bundle), cid)
    assert r.rc == 1 and "linux.seccomp.defaultAction" in r.msg, r
    assert not (ketch.root / cid).exists()
