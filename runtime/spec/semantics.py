"""Rules of config.json that relate values to each other (runtime-spec ``config.md``).

The JSON Schema (``spec-schemas/runtime/config-schema.json``) checks shapes; the
rules here check meaning, mirroring runc (``libcontainer/configs/validate``,
``libcontainer/specconv``, ``libcontainer/env.go``):

- ``config.md#specification-version``: the major version must be 1;
- ``config.md#root``: ``root.path`` present and not empty;
- ``config.md#process``: ``args`` non-empty, ``cwd`` absolute, ``env`` entries
  ``NAME=VALUE`` with a non-empty name and no NUL, no NUL in ``args``, no duplicate ``rlimits`` type,
  scheduler fields that fit the policy (``sched_setattr(2)``);
- ``config.md#mounts``: ``destination`` NUL-free; a relative one, which the
  spec deprecates, is accepted as runc 1.1 accepts it (below the container's
  ``/``, with runc's warning: ``absolute_mount_destinations``);
- ``config.md#posix-platform-hooks``: hook ``path`` absolute, hook ``env`` as above.

Linux rules (``config-linux.md``) live in ``semantics_linux``.  Every rule raises
``ConfigError(field, message)``; the document is expected to have passed the
schema check (``validate.validate_config`` runs both, in that order).
"""

from __future__ import annotations

from collections.abc import Callable

from ketch.runtime.errors import ConfigError
from ketch.runtime.spec import semantics_linux

HOOK_NAMES = ("prestart", "createRuntime", "createContainer", "startContainer",
              "poststart", "poststop")
_RT_POLICIES = ("SCHED_FIFO", "SCHED_RR")
_NICE_POLICIES = ("SCHED_OTHER", "SCHED_BATCH")


def check_semantics(doc: dict) -> None:
    """Raise ``ConfigError`` for the first semantic rule ``doc`` breaks.

    ``doc`` is a config.json document (a dict) that already satisfies the schema.
    """
    _check_version(doc)
    _check_root(doc)
    process = doc.get("process")
    if isinstance(process, dict):
        check_process(process, "process")
    _check_mounts(doc.get("mounts") or [])
    _check_hooks(doc.get("hooks") or {})
    semantics_linux.check_linux(doc)


def _check_version(doc: dict) -> None:
    version = doc.get("ociVersion")
    if isinstance(version, str):
        major = version.split(".", 1)[0]
        if major != "1":
            raise ConfigError("ociVersion",
                              f"unsupported major version {major} (Ketch implements 1.x)")


def _check_root(doc: dict) -> None:
    root = doc.get("root")
    if not isinstance(root, dict):
        raise ConfigError("root", "is required")
    if "path" not in root:
        raise ConfigError("root.path", "is required")
    if root["path"] == "":
        raise ConfigError("root.path", "must not be empty")


def check_process(process: dict, field: str = "process") -> None:
    """The ``config.md#process`` rules for one process object (also usable for ``exec``).

    ``field`` prefixes the paths in errors (``process`` for config.json).
    """
    args = process.get("args")
    if not isinstance(args, list) or not args:
        raise ConfigError(f"{field}.args", "must be a non-empty array")
    if args[0] == "":
        raise ConfigError(f"{field}.args[0]", "must not be empty")
    for i, arg in enumerate(args):
        if "\0" in arg:  # execve(2) cannot carry it
            raise ConfigError(f"{field}.args[{i}]", "must not contain a NUL byte")
    cwd = process.get("cwd")
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        raise ConfigError(f"{field}.cwd", "must be an absolute path")
    check_env(process.get("env") or [], f"{field}.env")
    seen: dict[str, int] = {}
    for i, rlimit in enumerate(process.get("rlimits") or []):
        kind = rlimit.get("type")
        if kind in seen:
            raise ConfigError(f"{field}.rlimits[{i}].type",
                              f"duplicate rlimit {kind} (also in {field}.rlimits[{seen[kind]}])")
        seen[kind] = i
    scheduler = process.get("scheduler")
    if isinstance(scheduler, dict):
        _check_scheduler(scheduler, f"{field}.scheduler")


def check_env(env: list, field: str) -> None:
    """Each entry is ``NAME=VALUE`` with a non-empty NAME and no NUL (runc ``prepareEnv``)."""
    for i, entry in enumerate(env):
        name, sep, _ = entry.partition("=")
        if not sep:
            raise ConfigError(f"{field}[{i}]", f"{entry[:40]!r} must have the form NAME=VALUE")
        if not name:
            raise ConfigError(f"{field}[{i}]", "must have a non-empty NAME before '='")
        if "\0" in entry:
            raise ConfigError(f"{field}[{i}]", "must not contain a NUL byte")


def _check_scheduler(s: dict, field: str) -> None:
    policy = s.get("policy")
    nice = s.get("nice", 0)
    if policy in _NICE_POLICIES and not -20 <= nice <= 19:
        raise ConfigError(f"{field}.nice", f"must be between -20 and 19 for {policy}")
    if s.get("priority", 0) != 0 and policy not in _RT_POLICIES:
        raise ConfigError(f"{field}.priority", "can only be set for SCHED_FIFO or SCHED_RR")
    if policy != "SCHED_DEADLINE":
        for name in ("runtime", "deadline", "period"):
            if s.get(name, 0) != 0:
                raise ConfigError(f"{field}.{name}", "can only be set for SCHED_DEADLINE")


def _check_mounts(mounts: list) -> None:
    for i, mount in enumerate(mounts):
        for name in ("destination", "source"):
            if "\0" in mount.get(name, ""):
                raise ConfigError(f"mounts[{i}].{name}", "must not contain a NUL byte")


def absolute_mount_destinations(doc: dict, warn: Callable[[str], None]) -> None:
    """Make each relative ``mounts[].destination`` of a validated ``doc`` absolute,
    in place, calling ``warn`` with runc 1.1's message for it.

    config.md "Mounts": a relative destination is deprecated; runc 1.1 mounts it
    relative to the container's ``/``. Prefixing ``/`` means the same, and the
    mount is then resolved in-root like every other destination (``..`` cannot
    leave the rootfs). Raises nothing.
    """
    for mount in doc.get("mounts") or []:
        dest = mount["destination"]
        if not dest.startswith("/"):
            warn(f"mount destination {dest} is not absolute. Support for non-absolute mount "
                 "destinations will be removed in a future release.")
            mount["destination"] = "/" + dest


def _check_hooks(hooks: dict) -> None:
    for name in HOOK_NAMES:
        for i, hook in enumerate(hooks.get(name) or []):
            if not hook["path"].startswith("/"):
                raise ConfigError(f"hooks.{name}[{i}].path", "must be an absolute path")
            check_env(hook.get("env") or [], f"hooks.{name}[{i}].env")
