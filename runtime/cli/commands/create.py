"""``ketch create [options] <container-id>``: runtime-spec ``create``.

runc's ``create``: ``--bundle/-b`` (default: the current directory),
``--pid-file`` (made absolute against the current directory, as runc's
``revisePidFile``), ``--console-socket`` (runc reads the bundle after
changing into it, so a relative socket path is relative to the bundle),
``--no-pivot``, ``--no-new-keyring``, ``--preserve-fds N`` (runc ignores a
negative N). The global ``--rootless`` must be true/false/auto (runc checks
it here). Errors are reported as ``ketch create failed: ...``.
"""

from __future__ import annotations

import os

from ketch.runtime.cli import backend
from ketch.runtime.errors import InvalidIDError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ketch.runtime.cli.app import Context


def container_id(ctx: Context) -> str:
    """The ID argument; runc refuses an empty one before touching the state root."""
    cid = ctx.args[0]
    if not cid:
        raise InvalidIDError("container id cannot be empty")
    return cid


def absolute(path: str) -> str:
    """Go's ``filepath.Abs``: joined with the current directory and cleaned."""
    p = os.path.abspath(path)
    return "/" + p.lstrip("/") if p.startswith("//") else p


def check_rootless(value: str) -> None:
    """runc's ``parseBoolOrAuto`` of the global ``--rootless`` (checked by create/run only)."""
    if value == "" or value.lower() == "auto":
        return
    from ketch.runtime.cli.flags import parse_bool

    try:
        parse_bool(value)
    except ValueError:
        from ketch.runtime.cli.gofmt import quote

        raise UsageError(f"strconv.ParseBool: parsing {quote(value)}: invalid syntax") from None


def create_options(ctx: Context) -> tuple[str, dict[str, object]]:
    """The bundle and the keyword arguments of ``Container.create`` from the flags."""
    check_rootless(str(ctx.globals["rootless"]))
    if ctx.globals["systemd-cgroup"]:
        # cgroupsPath "slice:prefix:name" through systemd's D-Bus API is not
        # implemented; say so rather than place the container elsewhere.
        if not os.path.isdir("/run/systemd/system"):
            # runc's text
            raise UsageError("systemd not running on this host, cannot use systemd cgroups manager")
        raise UsageError("--systemd-cgroup is not supported by this version of ketch")
    o = ctx.opts
    bundle = absolute(str(o["bundle"]) or os.getcwd())
    pid_file = str(o["pid-file"])
    console_socket = str(o["console-socket"])
    preserve = o["preserve-fds"]
    return bundle, {
        "pid_file": absolute(pid_file) if pid_file else None,
        "console_socket": os.path.join(bundle, console_socket) if console_socket else None,
        "no_pivot": bool(o["no-pivot"]),
        "preserve_fds": max(0, preserve if isinstance(preserve, int) else 0),
        "no_new_keyring": bool(o["no-new-keyring"]),
    }


def run(ctx: Context) -> int:
    cid = container_id(ctx)
    bundle, kwargs = create_options(ctx)
    backend.get().Container.create(ctx.root, cid, bundle, **kwargs)
    return 0
