"""Process attributes end to end: what the README lists is what the container sees."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import Runtime


def test_personality_io_priority_scheduler_and_time_offsets(ketch: Runtime, make_bundle) -> None:
    def edit(c: dict) -> None:
        c["linux"]["personality"] = {"domain": "LINUX32"}
        c["linux"]["namespaces"].append({"type": "time"})
        c["linux"]["timeOffsets"] = {"boottime": {"secs": 864000, "nanosecs": 0}}
        c["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_IDLE", "priority": 0}
        c["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 7}

    cmd = ["sh", "-c", "uname -m; ionice; cut -d' ' -f19 /proc/self/stat; "
                       "cut -d. -f1 /proc/uptime; cat /proc/self/sched | grep -m1 policy"]
    r = ketch("run", "-b", str(make_bundle(cmd, edit=edit)), ketch.new_id("attrs"))
    assert r.rc == 0, r
    arch, ionice, nice, uptime, policy = r.out.splitlines()
    assert arch in ("i686", "i386", "armv8l", "armv7l")
    assert ionice == "idle"
    assert nice == "7"
    assert int(uptime) >= 864000  # boottime moved by the offset
    assert policy.split()[-1] == "3"  # SCHED_BATCH


@pytest.mark.parametrize("listen_pid", ["ours", "another", "unset"])
def test_listen_fds_are_passed_with_the_environment(runc: Runtime, ketch: Runtime, make_bundle,
                                                    tmp_path, listen_pid: str) -> None:
    """Socket activation: ``LISTEN_FDS`` fds reach the container (with LISTEN_FDS and
    LISTEN_PID=1) only when ``LISTEN_PID`` is the runtime's own pid, as with runc
    (ketch also passed fds that an activated ancestor's variables described)."""
    data = tmp_path / "in"
    data.write_text("socket-activated\n")
    bundle = make_bundle(["sh", "-c", "echo $LISTEN_FDS $LISTEN_PID; cat <&3"])
    # exec keeps bash's pid for the runtime: $$ is the runtime's pid
    export = {"ours": "export LISTEN_PID=$$;", "another": "export LISTEN_PID=1;",
              "unset": ""}[listen_pid]
    seen = {}
    for rt in (runc, ketch):
        p = subprocess.run(["bash", "-c", f'{export} exec "$@" 3<{data}', "x",
                            *rt.argv("run", "-b", str(bundle), rt.new_id("listen"))],
                           capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL,
                           env={"LISTEN_FDS": "1", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        seen[rt.name] = (p.returncode, p.stdout)
    assert seen["ketch"] == seen["runc"], seen
    if listen_pid == "ours":
        assert seen["ketch"] == (0, "1 1\nsocket-activated\n")
    else:
        assert seen["ketch"][1].startswith("\n"), seen  # no LISTEN_* in the container
