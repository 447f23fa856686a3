"""The cgroup v2 eBPF device filter: the generated program run by a small
interpreter of the instructions it uses, against the rule semantics written
out in Python; and its load/attach through the recording syscalls."""

from __future__ import annotations

import itertools
import struct

import pytest

from ketch.runtime import syscalls as s
from ketch.runtime.cgroups import devices_bpf
from ketch.runtime.cgroups.v1 import device_rules
from ketch.runtime.syscalls.fake import RecordingSyscalls

ACC = {"m": 1, "r": 2, "w": 4}
TYPE = {"b": 1, "c": 2}


def run(prog: bytes, dev_type: str, major: int, minor: int, access: str) -> int:
    """Execute ``prog`` on a bpf_cgroup_dev_ctx; returns r0."""
    ctx = [(sum(ACC[a] for a in access) << 16) | TYPE[dev_type], major, minor]
    regs = [0] * 11
    insns = [struct.unpack("<BBhi", prog[i:i + 8]) for i in range(0, len(prog), 8)]
    pc, steps = 0, 0
    while True:
        steps += 1
        assert steps < 10000
        code, regs_byte, off, imm = insns[pc]
        dst, src = regs_byte & 0xF, regs_byte >> 4
        pc += 1
        if code == 0x61:
            assert src == 1 and off in (0, 4, 8)
            regs[dst] = ctx[off // 4]
        elif code == 0xBF:
            regs[dst] = regs[src]
        elif code == 0xB7:
            regs[dst] = imm
        elif code == 0x57:
            regs[dst] &= imm
        elif code == 0x77:
            regs[dst] >>= imm
        elif code == 0x15:
            pc += off if regs[dst] == imm else 0
        elif code == 0x55:
            pc += off if regs[dst] != imm else 0
        elif code == 0x05:
            pc += off
        elif code == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


def reference(rules: list[dict], dev_type: str, major: int, minor: int, access: str) -> int:
    """Each access kind asked for: the last matching rule covering it decides; none: deny."""
    for kind in access:
        verdict = False
        for rule in rules:
            if kind not in rule.get("access", "rwm"):
                continue
            if rule.get("type", "a") not in ("a", dev_type):
                continue
            if rule.get("major") not in (None, -1, major) or rule.get("minor") not in (None, -1, minor):
                continue
            verdict = bool(rule.get("allow"))
        if not verdict:
            return 0
    return 1


RULE_SETS = [
    [{"allow": False, "access": "rwm"}],
    [{"allow": True, "access": "rwm"}],
    [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 5,
                                         "access": "rw"}],
    [{"allow": True, "access": "rwm"}, {"allow": False, "type": "b", "major": 8, "access": "w"}],
    [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 136,
                                         "access": "rwm"},
     {"allow": False, "type": "c", "major": 136, "minor": 2, "access": "m"}],
    device_rules([{"allow": False, "access": "rwm"},
                  {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "r"}],
                 [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229},
                  {"path": "/dev/fifo", "type": "p"}]),
    [],
]
DEVICES = [("c", 1, 3), ("c", 1, 5), ("c", 136, 2), ("c", 136, 7), ("b", 8, 0), ("b", 8, 16),
           ("c", 10, 229), ("b", 7, 0)]
ACCESSES = ["r", "w", "m", "rw", "rwm"]


@pytest.mark.parametrize("rules", RULE_SETS)
def test_program_agrees_with_the_rule_semantics(rules):
    prog = devices_bpf.program(rules)
    for (dev_type, major, minor), access in itertools.product(DEVICES, ACCESSES):
        assert run(prog, dev_type, major, minor, access) == reference(
            rules, dev_type, major, minor, access), (rules, dev_type, major, minor, access)


def test_no_unreachable_instructions_after_a_rule_for_every_device():
    """The verifier refuses dead code: a wildcard rule ends its access kind's section."""
    prog = devices_bpf.program([{"allow": True, "access": "rwm"},
                                {"allow": False, "access": "rwm"}])
    # three sections of 3 (test) + 2 (deny) instructions, prologue 6, epilogue 2
    assert len(prog) // 8 == 6 + 3 * 5 + 2


def test_attach_loads_then_attaches_with_allow_multi(tmp_path):
    fake = RecordingSyscalls()
    devices_bpf.attach(str(tmp_path), [{"allow": False, "access": "rwm"}], fake)
    assert fake.names() == ["bpf_prog_load", "bpf_prog_attach"]
    assert fake.calls[0][1] == s.BPF_PROG_TYPE_CGROUP_DEVICE and fake.calls[0][3] == "Apache"
    assert fake.calls[1][1:] == (s.BPF_CGROUP_DEVICE, s.BPF_F_ALLOW_MULTI)


def test_attach_error_is_raised(tmp_path):
    fake = RecordingSyscalls(fail={"bpf_prog_attach": 1})
    with pytest.raises(OSError, match="bpf_prog_attach"):
        devices_bpf.attach(str(tmp_path), [], fake)
