"""``ketch exec [options] <container-id> <command> [args...]`` or ``-p process.json``.

runc's ``exec`` (not a runtime-spec operation): the process starts from the
container's own ``process`` object; the command line replaces ``args``,
``--env`` appends to ``env``, ``--tty`` sets ``terminal`` (false unless
given), ``--cwd``, ``--user uid[:gid]``, ``--additional-gids``,
``--no-new-privs``, ``--cap`` (added to the bounding, effective and
permitted sets; to ambient only when the process has inheritable
capabilities), ``--apparmor`` (``apparmorProfile``) and ``--process-label``
(``selinuxLabel``) override it. ``--process`` reads a whole ``process`` object
instead. ``--cgroup [CONTROLLER[,CONTROLLER...]:]PATH`` (repeatable) puts the
process in existing sub-cgroups of the container's; ``--ignore-paused``
allows exec into a paused container. Every failure is reported as ``exec failed: ...`` with exit status
255, as runc does; otherwise the exit status is the process's.
"""

from __future__ import annotations

import json
import re

from ketch.runtime.cli import backend
from ketch.runtime.cli.commands.create import absolute, container_id
from ketch.runtime.errors import ProcessError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ketch.runtime.cli.app import Context


def sub_cgroup_paths(values: list[str]) -> dict[str, str]:
    """The ``--cgroup`` values as runc 1.1 reads them: controller -> sub-cgroup path.

    ``values``: each ``PATH`` (alone only: the key ``""``, every hierarchy) or
    ``CONTROLLER[,CONTROLLER...]:PATH``. Raises ``UsageError`` in runc's words.
    """
    paths: dict[str, str] = {}
    for value in values:
        parts = value.split(":", 2)
        if len(parts) > 2:
            raise UsageError(f"invalid --cgroup argument: {value}")
        if len(parts) == 1:
            if len(values) != 1:
                raise UsageError(f"invalid --cgroup argument: {value} (missing <controller>: prefix)")
            paths[""] = value
            continue
        for controller in parts[0].split(","):
            paths[controller] = parts[1]
    return paths


_GO_INT = re.compile(r"[+-]?[0-9]+")
# runc (libcontainer/user): ids outside 0..2^31-1 are refused, so that no
# value wraps to -1, which set*id(2) reads as "leave unchanged" (still root)
MAX_ID = 2**31 - 1


def _user_id(text: str, what: str) -> int:
    """``text`` parsed as Go's ``strconv.Atoi`` would (no blanks, ASCII digits),
    with runc's error wording; the range is checked by ``check_user_ids``."""
    if not _GO_INT.fullmatch(text):
        raise UsageError(f'parsing {text} as int for {what} failed: '
                         f'strconv.Atoi: parsing "{text}": invalid syntax')
    return int(text)


def check_user_ids(user: dict) -> None:
    """Refuse uid/gid outside 0..2^31-1 with runc's message (``exec --user``)."""
    if not all(0 <= v <= MAX_ID for v in (user.get("uid", 0), user.get("gid", 0))):
        raise ProcessError("unable to start container process: unable to setup user: "
                           f"uids and gids must be in range 0-{MAX_ID}")


def _env_flags(values: list[str]) -> list[str]:
    """The ``--env`` values as runc 1.1.5 passes them on: an empty value is dropped
    when some other value is given, and kept (and refused) when it is alone.
    Each kept entry must be ``NAME=VALUE`` with a non-empty NAME (runc's words on failure)."""
    given = [v for v in values if v]
    chosen = given if given else values
    for entry in chosen:
        # Named by the flag's value, in runc's words: an index into the merged
        # env (config's entries first) would point the caller at the wrong list.
        name, sep, _ = entry.partition("=")
        if not sep:
            raise ProcessError("unable to start container process: "
                               f"invalid environment variable: {_go_quote(entry)}")
        if not name:
            raise ProcessError("unable to start container process: "
                               f"environment variable name can't be empty: {_go_quote(entry)}")
    return chosen


def _go_quote(text: str) -> str:
    """``text`` as Go's %q prints it for plain text (runc's messages quote that way)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_process(ctx: Context, template: dict) -> dict:
    """The ``process`` object from ``--process`` or from the container's, with overrides."""
    o = ctx.opts
    if o["process"]:
        path = str(o["process"])
        try:
            with open(path) as f:
                return json.load(f)
        except OSError as e:
            raise UsageError(f"open {path}: {e.strerror.lower() if e.strerror else e}") from None
        except ValueError as e:
            raise UsageError(f"invalid process JSON in {path}: {e}") from None
    p = template
    p["args"] = list(ctx.args[1:])
    if not p["args"]:
        raise UsageError("process args cannot be empty")
    caps = p.setdefault("capabilities", {})
    for cap in o["cap"] or ():  # type: ignore[attr-defined]
        for key in ("bounding", "effective", "permitted"):
            caps.setdefault(key, []).append(cap)
        if caps.get("inheritable") is not None:
            caps.setdefault("ambient", []).append(cap)
    p["env"] = [*(p.get("env") or []), *_env_flags(list(o["env"] or ()))]  # type: ignore[call-overload]
    p["terminal"] = bool(o["tty"]) if ctx.opts.is_set("tty") else False
    if ctx.opts.is_set("no-new-privs"):
        p["noNewPrivileges"] = bool(o["no-new-privs"])
    if o["cwd"]:
        p["cwd"] = str(o["cwd"])
    if o["apparmor"]:
        p["apparmorProfile"] = str(o["apparmor"])
    if o["process-label"]:
        p["selinuxLabel"] = str(o["process-label"])
    user = p.setdefault("user", {"uid": 0, "gid": 0})
    if o["user"]:
        uid, colon, gid = str(o["user"]).partition(":")
        if colon:
            user["gid"] = _user_id(gid, "gid")
        user["uid"] = _user_id(uid, "uid")
        check_user_ids(user)
    if o["additional-gids"]:
        user["additionalGids"] = list(o["additional-gids"])  # type: ignore[call-overload]
    return p


def run(ctx: Context) -> int:
    try:
        return _exec(ctx)
    except Exception as e:
        from ketch.runtime.cli.app import error_message, fatal

        fatal(f"exec failed: {error_message(e)}")
        return 255


def _exec(ctx: Context) -> int:
    from ketch.runtime.linux.lsm import check_exec_lsm

    o = ctx.opts
    sub_cgroups = sub_cgroup_paths(list(o["cgroup"] or ()))  # type: ignore[call-overload]
    cid = container_id(ctx)
    container = backend.get().Container.load(ctx.root, cid)
    template = container.process_template()
    container_label = template.get("selinuxLabel")
    process = build_process(ctx, template)
    check_exec_lsm(process, container_label)
    preserve = o["preserve-fds"]
    return int(container.exec(
        process,
        detach=bool(o["detach"]),
        pid_file=absolute(str(o["pid-file"])) if o["pid-file"] else None,
        console_socket=absolute(str(o["console-socket"])) if o["console-socket"] else None,
        preserve_fds=max(0, preserve if isinstance(preserve, int) else 0),
        debug=bool(ctx.globals["debug"]),
        ignore_paused=bool(o["ignore-paused"]),
        sub_cgroups=sub_cgroups or None,
    ))
