"""``ketch exec [options] <container-id> <command> [args...]`` or ``-p process.json``.

runc's ``exec`` (not a runtime-spec operation): the process starts from the
container's own ``process`` object; the command line replaces ``args``,
``--env`` appends to ``env``, ``--tty`` sets ``terminal`` (false unless
given), ``--cwd``, ``--user uid[:gid]``, ``--additional-gids``,
``--no-new-privs`` and ``--cap`` (added to the bounding, effective and
permitted sets; to ambient only when the process has inheritable
capabilities) override it. ``--process`` reads a whole ``process`` object
instead. Every failure is reported as ``exec failed: ...`` with exit status
255, as runc does; otherwise the exit status is the process's.
"""

from __future__ import annotations

import json

from ketch.runtime.cli import backend
from ketch.runtime.cli.commands.create import absolute, container_id
from ketch.runtime.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ketch.runtime.cli.app import Context


def _ints(values: object, what: str) -> list[int]:
    out = []
    for v in values or ():  # type: ignore[attr-defined]
        try:
            out.append(int(v, 10))
        except ValueError:
            raise UsageError(f'parsing {what} "{v}": invalid syntax') from None
    return out


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
    p["env"] = [*(p.get("env") or []), *(o["env"] or ())]  # type: ignore[misc]
    p["terminal"] = bool(o["tty"]) if ctx.opts.is_set("tty") else False
    if ctx.opts.is_set("no-new-privs"):
        p["noNewPrivileges"] = bool(o["no-new-privs"])
    if o["cwd"]:
        p["cwd"] = str(o["cwd"])
    user = p.setdefault("user", {"uid": 0, "gid": 0})
    if o["user"]:
        uid, _, gid = str(o["user"]).partition(":")
        user["uid"] = _ints([uid], "uid")[0]
        if gid:
            user["gid"] = _ints([gid], "gid")[0]
    if o["additional-gids"]:
        user["additionalGids"] = _ints(o["additional-gids"], "additional gid")
    return p


def run(ctx: Context) -> int:
    try:
        return _exec(ctx)
    except Exception as e:
        from ketch.runtime.cli.app import error_message, fatal

        fatal(f"exec failed: {error_message(e)}")
        return 255


def _exec(ctx: Context) -> int:
    cid = container_id(ctx)
    container = backend.get().Container.load(ctx.root, cid)
    process = build_process(ctx, container.process_template())
    o = ctx.opts
    preserve = o["preserve-fds"]
    return int(container.exec(
        process,
        detach=bool(o["detach"]),
        pid_file=absolute(str(o["pid-file"])) if o["pid-file"] else None,
        console_socket=absolute(str(o["console-socket"])) if o["console-socket"] else None,
        preserve_fds=max(0, preserve if isinstance(preserve, int) else 0),
        debug=bool(ctx.globals["debug"]),
    ))
