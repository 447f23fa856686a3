"""Capabilities seen from inside the container, side by side with runc: unknown
names (runtime-spec config.md "capabilities": SHOULD NOT fail) and
``exec --cap``, which adds to the bounding, effective and permitted sets only."""

from __future__ import annotations

from .conftest import Runtime

STATUS = ["grep", "-E", "^(Cap|NoNewPrivs)", "/proc/self/status"]
WARNING = "ignoring unknown or unavailable capabilities: [CAP_ALSO_BOGUS CAP_NOT_A_THING]"


def _unknown_names(config: dict) -> None:
    caps = config["process"]["capabilities"]
    for key in ("bounding", "effective", "permitted"):
        caps[key] = [*caps[key], "CAP_NOT_A_THING"]
    caps["ambient"] = ["CAP_ALSO_BOGUS"]


def test_unknown_capability_is_a_warning_like_runc(runc: Runtime, ketch: Runtime,
                                                   make_bundle) -> None:
    bundle = make_bundle(STATUS, edit=_unknown_names)
    seen = {}
    for rt in (runc, ketch):
        r = rt("run", "-b", str(bundle), rt.new_id("capunknown"))
        warnings = [line for line in r.err.splitlines() if "level=warning" in line]
        seen[rt.name] = (r.rc, r.out, [rt.norm(w.split("msg=", 1)[1]) for w in warnings])
    assert seen["runc"][0] == 0 and seen["runc"][2] == [f'"{WARNING}"'], seen
    assert seen["ketch"] == seen["runc"], seen


def test_exec_cap_adds_to_bounding_effective_permitted_only(runc: Runtime, ketch: Runtime,
                                                            make_bundle) -> None:
    """``exec --cap CAP_SYS_ADMIN`` on a process with no inheritable set: CapInh and
    CapAmb stay empty (runc < 1.1.2 put --cap in the inheritable set, CVE-2022-29162);
    an unknown --cap is a warning."""
    bundle = make_bundle(["sleep", "1000"])
    seen = {}
    for rt in (runc, ketch):
        cid = rt.new_id("execcap")
        assert rt("run", "-d", "-b", str(bundle), cid).rc == 0
        r = rt("exec", "--cap", "CAP_SYS_ADMIN", "--cap", "CAP_NOT_A_THING", cid, *STATUS)
        rt("delete", "-f", cid)
        seen[rt.name] = (r.rc, r.out, r.err.count("CAP_NOT_A_THING"))
    lines = dict(line.split(":\t") for line in seen["runc"][1].splitlines())
    assert lines["CapInh"] == lines["CapAmb"] == "0000000000000000", seen
    assert int(lines["CapEff"], 16) & (1 << 21), seen  # CAP_SYS_ADMIN
    assert seen["ketch"] == seen["runc"], seen
