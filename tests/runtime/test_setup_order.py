"""What runc does at fixed points of the setup, compared on the same bundle.

- ``linux.sysctl`` is written after pivot_root and before ``readonlyPaths``
  (the default config makes /proc/sys read-only; Docker sets
  ``net.ipv4.ip_unprivileged_port_start`` in every container with its own
  network namespace).
- ``linux.resources`` are applied once the init has set the container up
  ("procReady" in runc): the setup's own processes do not count against
  ``pids.limit``, and a memory limit below what the init already uses is
  refused by the kernel with runc's message.
"""

from __future__ import annotations

import os

import pytest

from .conftest import Runtime, cgroup_leftovers

pytestmark = pytest.mark.runc


def _both(runc: Runtime, ketch: Runtime, bundle) -> tuple:
    r = runc("run", "-b", str(bundle), runc.new_id("order"))
    k = ketch("run", "-b", str(bundle), ketch.new_id("order"))
    return r, k


def test_sysctl_is_written_before_proc_sys_turns_read_only(runc: Runtime, ketch: Runtime,
                                                           make_bundle) -> None:
    key = "net.ipv4.ip_unprivileged_port_start"

    def edit(c: dict) -> None:
        assert "/proc/sys" in c["linux"]["readonlyPaths"]
        c["linux"]["sysctl"] = {key: "0"}

    bundle = make_bundle(["sh", "-c", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start; "
                                      "echo 1 > /proc/sys/net/ipv4/ip_unprivileged_port_start "
                                      "2>/dev/null || echo read-only"], edit=edit)
    r, k = _both(runc, ketch, bundle)
    assert r.rc == 0, str(r)
    assert (k.rc, k.out) == (r.rc, r.out) == (0, "0\nread-only\n"), f"runc: {r}\nketch: {k}"


def test_pids_limit_counts_only_the_container(runc: Runtime, ketch: Runtime,
                                              make_bundle) -> None:
    def edit(c: dict) -> None:
        c["linux"]["resources"] = {"pids": {"limit": 1}}

    # the container starts (its init alone is within the limit); its first fork fails
    bundle = make_bundle(["sh", "-c", "echo alone; true & wait; echo rc=$?"], edit=edit)
    r, k = _both(runc, ketch, bundle)
    assert r.out.startswith("alone\n"), str(r)
    assert (k.rc, k.out) == (r.rc, r.out), f"runc: {r}\nketch: {k}"


def test_memory_limit_below_usage_is_one_clear_error(runc: Runtime, ketch: Runtime,
                                                     make_bundle) -> None:
    def edit(c: dict) -> None:
        c["linux"]["resources"] = {"memory": {"limit": 1000}}

    bundle = make_bundle(["true"], edit=edit)
    cid = ketch.new_id("memlow")
    r = runc("run", "-b", str(bundle), runc.new_id("memlow"))
    k = ketch("run", "-b", str(bundle), cid)
    assert r.rc == k.rc == 1, f"runc: {r}\nketch: {k}"
    assert "unable to set memory limit to 1000 (current usage:" in r.msg
    assert "unable to set memory limit to 1000 (current usage:" in k.msg, str(k)
    assert len(k.err.strip().splitlines()) == 1, str(k)
    assert not ketch.root.exists() or os.listdir(ketch.root) == []
    assert cgroup_leftovers(cid) == []
