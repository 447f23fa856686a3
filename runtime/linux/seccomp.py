"""``linux.seccomp`` to a libseccomp filter (runtime-spec config-linux.md "Seccomp").

Actions, operators, architectures and flags follow the spec's names; values
are libseccomp's (``seccomp.h``). Like runc: unknown syscall names are
skipped, a rule whose action equals the default action is dropped, and an
unknown action or operator is an error naming the field, and several ``args``
on the same argument index become one rule each; ``errnoRet`` is the
return value of ``SCMP_ACT_ERRNO`` and ``SCMP_ACT_TRACE`` (EPERM when unset).

``SCMP_ACT_NOTIFY`` needs ``listenerPath``; it cannot be the default action
nor apply to write(2) (the runtime's own messages would block on the agent),
as in runc. The listener fd is handed to the agent by
``ketch.runtime.process.seccomp_agent``.
"""

from __future__ import annotations

from ketch.runtime.errors import ConfigError
from ketch.runtime.syscalls import SeccompFilter

# seccomp.h action values; ERRNO and TRACE carry a 16-bit value
ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000, "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_ALLOW": 0x7FFF0000,
    "SCMP_ACT_NOTIFY": 0x7FC00000,
}
_WITH_RETURN_VALUE = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
OPERATORS = {"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
              "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"}
FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": "CTL_TSYNC", "SECCOMP_FILTER_FLAG_LOG": "CTL_LOG",
          "SECCOMP_FILTER_FLAG_SPEC_ALLOW": "CTL_SSB"}
_EPERM = 1


def _action(name: str, errno_ret: int | None, field: str) -> int:
    if name not in ACTIONS:
        raise ConfigError(field, f"unknown seccomp action {name!r}")
    value = ACTIONS[name]
    if name in _WITH_RETURN_VALUE:
        value |= (_EPERM if errno_ret is None else errno_ret) & 0xFFFF
    return value


def _check_notify(seccomp: dict) -> None:
    """runc's rules for ``SCMP_ACT_NOTIFY`` (checked before anything is created)."""
    if seccomp.get("defaultAction") == "SCMP_ACT_NOTIFY":
        raise ConfigError("linux.seccomp.defaultAction",
                          "SCMP_ACT_NOTIFY cannot be used as default action")
    notify = [i for i, r in enumerate(seccomp.get("syscalls") or [])
              if r.get("action") == "SCMP_ACT_NOTIFY"]
    for i in notify:
        if "write" in (seccomp["syscalls"][i].get("names") or []):
            raise ConfigError(f"linux.seccomp.syscalls[{i}].names",
                              "SCMP_ACT_NOTIFY cannot be used for the write syscall")
    if notify and not seccomp.get("listenerPath"):
        raise ConfigError("linux.seccomp.listenerPath",
                          "is not set but SCMP_ACT_NOTIFY is used")


def _arch(name: str) -> str:
    # SCMP_ARCH_X86_64 -> "x86_64", the name seccomp_arch_resolve_name knows
    return name.removeprefix("SCMP_ARCH_").lower()


def build_filter(seccomp: dict) -> SeccompFilter:
    """The filter for a ``linux.seccomp`` object; raises ``ConfigError`` naming the field."""
    _check_notify(seccomp)
    default = _action(seccomp.get("defaultAction", ""), seccomp.get("defaultErrnoRet"),
                      "linux.seccomp.defaultAction")
    rules: list[tuple[int, str, list[tuple[int, str, int, int]]]] = []
    for i, rule in enumerate(seccomp.get("syscalls") or []):
        field = f"linux.seccomp.syscalls[{i}]"
        action = _action(rule.get("action", ""), rule.get("errnoRet"), field + ".action")
        if action == default:
            continue  # libseccomp refuses a rule that changes nothing
        args = []
        for j, arg in enumerate(rule.get("args") or []):
            if arg.get("op") not in OPERATORS:
                raise ConfigError(f"{field}.args[{j}].op", f"unknown operator {arg.get('op')!r}")
            args.append((arg["index"], arg["op"], arg.get("value", 0), arg.get("valueTwo", 0)))
        for name in rule.get("names") or []:
            if len({a[0] for a in args}) < len(args):
                # libseccomp takes one comparison per argument in a rule: several on
                # the same argument become one rule each, OR'ed (runc does the same)
                rules.extend((action, name, [a]) for a in args)
            else:
                rules.append((action, name, args))
    attrs = {"CTL_NNP": 0}  # no_new_privs is ours to set (process.noNewPrivileges)
    for flag in seccomp.get("flags") or []:
        if flag not in FLAGS:
            raise ConfigError("linux.seccomp.flags", f"unknown flag {flag!r}")
        attrs[FLAGS[flag]] = 1
    return SeccompFilter(default, [_arch(a) for a in seccomp.get("architectures") or []],
                         rules, attrs)
