"""``linux.seccomp`` translated into a libseccomp filter (config-linux.md "Seccomp")."""

from __future__ import annotations

import pytest

from ketch.runtime.errors import ConfigError
from ketch.runtime.linux.seccomp import build_filter

ALLOW, ERRNO, KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000


def test_actions_errno_values_args_archs_and_flags():
    flt = build_filter({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0xFF, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        ],
    })
    assert flt.default_action == ERRNO | 38
    assert flt.archs == ["x86_64", "aarch64"]
    assert flt.attrs == {"CTL_NNP": 0, "CTL_TSYNC": 1, "CTL_LOG": 1}
    assert flt.rules == [(ALLOW, "read", []), (ALLOW, "write", []), (ERRNO | 13, "mkdir", []),
                         (ALLOW, "personality", [(0, "SCMP_CMP_MASKED_EQ", 0xFF, 0)])]


def test_errno_defaults_to_eperm_and_rules_equal_to_default_are_dropped():
    flt = build_filter({"defaultAction": "SCMP_ACT_ALLOW",
                        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
                                     {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
                                     {"names": ["reboot"], "action": "SCMP_ACT_KILL_PROCESS"}]})
    assert flt.rules == [(ERRNO | 1, "mkdir", []), (KILL_PROCESS, "reboot", [])]


def test_trace_notify_spec_allow_and_repeated_argument():
    flt = build_filter({
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
        "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [
            {"names": ["ptrace"], "action": "SCMP_ACT_TRACE"},
            {"names": ["chdir"], "action": "SCMP_ACT_TRACE", "errnoRet": 38},
            {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
            {"names": ["sync"], "action": "SCMP_ACT_KILL_THREAD"},
            {"names": ["uname"], "action": "SCMP_ACT_LOG"},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"},
                      {"index": 1, "value": 15, "op": "SCMP_CMP_EQ"}]},
        ],
    })
    assert flt.attrs == {"CTL_NNP": 0, "CTL_SSB": 1}
    assert flt.rules == [(0x7FF00000 | 1, "ptrace", []), (0x7FF00000 | 38, "chdir", []),
                         (0x7FC00000, "mkdir", []), (0, "sync", []), (0x7FFC0000, "uname", []),
                         (ERRNO | 1, "kill", [(1, "SCMP_CMP_EQ", 9, 0)]),
                         (ERRNO | 1, "kill", [(1, "SCMP_CMP_EQ", 15, 0)])]
    assert flt.uses_notify()
    assert not build_filter({"defaultAction": "SCMP_ACT_ALLOW"}).uses_notify()


@pytest.mark.parametrize(("doc", "field"), [
    ({"defaultAction": "SCMP_ACT_BOGUS"}, "linux.seccomp.defaultAction"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "NOPE"}]},
     r"linux.seccomp.syscalls\[0\].action"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO",
                                                       "args": [{"index": 0, "op": "SCMP_CMP_XX"}]}]},
     r"linux.seccomp.syscalls\[0\].args\[0\].op"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]}, "linux.seccomp.flags"),
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, "linux.seccomp.defaultAction"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/s",
      "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]},
     r"linux.seccomp.syscalls\[0\].names"),
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}, "linux.seccomp.listenerPath"),
])
def test_bad_filters_name_the_field(doc, field):
    with pytest.raises(ConfigError, match=field):
        build_filter(doc)
