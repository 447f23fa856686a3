"""The cgroup v2 device filter: an eBPF program built from the config's device rules.

cgroup v2 has no ``devices.allow``/``devices.deny``; device access is decided
by ``BPF_PROG_TYPE_CGROUP_DEVICE`` programs attached to the cgroup (Linux
Documentation/admin-guide/cgroup-v2 "Device controller", ``linux/bpf.h``
``struct bpf_cgroup_dev_ctx``). The runtime-spec rules (config-linux.md
"Allowed Device") keep their v1 meaning: each access kind (mknod, read,
write) asked for is decided by the last rule in the list that matches the
device and covers that kind, and is denied when no rule does; the request
is allowed only when every kind it asks for is.

The program is assembled here as raw ``struct bpf_insn`` words (no compiler
or library), loaded with bpf(BPF_PROG_LOAD) and attached with
bpf(BPF_PROG_ATTACH, BPF_F_ALLOW_MULTI) through the syscalls seam, so the
programs of ancestor cgroups keep applying too.
"""

from __future__ import annotations

import os
import struct

from ketch.runtime import syscalls as s

# struct bpf_cgroup_dev_ctx: u32 access_type ((access << 16) | type), u32 major, u32 minor
_ACCESS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE
_TYPE = {"b": 1, "c": 2}  # BPF_DEVCG_DEV_BLOCK, _CHAR

# opcodes (linux/bpf_common.h, linux/bpf.h)
_LDX_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
_MOV64_X = 0xBF
_MOV64_K = 0xB7
_AND64_K = 0x57
_RSH64_K = 0x77
_JEQ_K = 0x15
_JNE_K = 0x55
_JA = 0x05
_EXIT = 0x95

# registers: r1 = ctx on entry; r0 = verdict
_R0, _R1, _TYPE_REG, _ACC_REG, _MAJOR_REG, _MINOR_REG, _TMP = 0, 1, 2, 3, 4, 5, 6


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _number(value: object) -> int | None:
    """A rule's major/minor: None (or -1) is the wildcard."""
    return None if value is None or value == -1 else int(value)  # type: ignore[call-overload]


def program(rules: list[dict]) -> bytes:
    """The filter for spec device rules (``allow``, ``type`` a/b/c, ``major``,
    ``minor``, ``access`` of "rwm"), in config order."""
    # (jump placeholder index, label) pairs resolved at the end
    code: list[tuple[int, int, int, int, int | str]] = []
    labels: dict[str, int] = {}

    def emit(op: int, dst: int = 0, src: int = 0, off: int | str = 0, imm: int = 0) -> None:
        code.append((op, dst, src, imm, off))  # type: ignore[arg-type]

    emit(_LDX_W, _TYPE_REG, _R1, 0)
    emit(_MOV64_X, _ACC_REG, _TYPE_REG)
    emit(_AND64_K, _TYPE_REG, imm=0xFFFF)
    emit(_RSH64_K, _ACC_REG, imm=16)
    emit(_LDX_W, _MAJOR_REG, _R1, 4)
    emit(_LDX_W, _MINOR_REG, _R1, 8)
    for kind, bit in _ACCESS.items():
        done = f"done-{kind}"
        emit(_MOV64_X, _TMP, _ACC_REG)
        emit(_AND64_K, _TMP, imm=bit)
        emit(_JEQ_K, _TMP, off=done, imm=0)  # this kind is not asked for
        decided = False
        for n, rule in enumerate(reversed(rules)):
            if kind not in (rule.get("access") or "rwm"):
                continue
            skip = f"skip-{kind}-{n}"
            conditions = len(code)
            kind_of_device = rule.get("type") or "a"
            if kind_of_device != "a":
                emit(_JNE_K, _TYPE_REG, off=skip, imm=_TYPE[kind_of_device])
            for reg, key in ((_MAJOR_REG, "major"), (_MINOR_REG, "minor")):
                value = _number(rule.get(key))
                if value is not None:
                    emit(_JNE_K, reg, off=skip, imm=value)
            decided = len(code) == conditions  # a rule for every device: nothing after counts
            if rule.get("allow"):
                emit(_JA, off=done)
            else:
                emit(_MOV64_K, _R0, imm=0)
                emit(_EXIT)
            labels[skip] = len(code)
            if decided:
                break  # the verifier refuses unreachable instructions
        if not decided:
            emit(_MOV64_K, _R0, imm=0)  # no rule decides: denied
            emit(_EXIT)
        labels[done] = len(code)
    emit(_MOV64_K, _R0, imm=1)
    emit(_EXIT)
    out = []
    for i, (op, dst, src, imm, off) in enumerate(code):
        if isinstance(off, str):
            off = labels[off] - (i + 1)  # jumps are relative to the next instruction
        out.append(_insn(op, dst, src, off, imm))
    return b"".join(out)


def attach(cgroup_dir: str, rules: list[dict], sys: s.Syscalls | None = None) -> None:
    """Load the filter for ``rules`` and attach it to the cgroup v2 directory
    ``cgroup_dir``. Raises ``OSError``."""
    sys = sys or s.linux()
    prog = sys.bpf_prog_load(s.BPF_PROG_TYPE_CGROUP_DEVICE, program(rules), "Apache")
    try:
        fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            sys.bpf_prog_attach(fd, prog, s.BPF_CGROUP_DEVICE, s.BPF_F_ALLOW_MULTI)
        finally:
            os.close(fd)
    finally:
        os.close(prog)  # the attachment keeps the program alive
