"""``ketch spec [--bundle|-b DIR] [--rootless]``: runc's ``spec``.

Writes ``config.json`` (runtime-spec ``config.md``) from
``ketch.runtime.spec.default.default_spec()`` the way runc does: change into
the bundle directory (``chdir DIR: no such file or directory`` if that
fails), refuse when ``config.json`` exists (``File config.json exists.
Remove it first``; a dangling symlink does not count and is written
through), write ``json.MarshalIndent(spec, "", "\\t")`` without a final
newline, mode 0666 less the umask.

``--rootless`` applies runc's ``specconv.ToRootless``: drop the network (and
any user) namespace and append a user namespace, map container uid/gid 0 to
the caller's effective uid/gid (size 1), drop ``uid=``/``gid=`` mount
options, replace the ``/sys`` mount by a read-only rbind of the host's
``/sys``, and remove ``linux.resources``. The cgroup mount stays, as in runc
1.1.
"""

from __future__ import annotations

import os

from ketch.runtime.cli import gofmt
from ketch.runtime.errors import KetchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ketch.runtime.cli.app import Context

CONFIG = "config.json"

# runtime-spec's Linux struct order: where uidMappings/gidMappings go.
_LINUX_ORDER = ("uidMappings", "gidMappings", "sysctl", "resources", "cgroupsPath", "namespaces",
                "devices", "seccomp", "rootfsPropagation", "maskedPaths", "readonlyPaths",
                "mountLabel", "intelRdt", "personality")


def to_rootless(spec: dict, uid: int | None = None, gid: int | None = None) -> dict:
    """runc's ``specconv.ToRootless`` on a spec document (modified in place and returned)."""
    uid = os.geteuid() if uid is None else uid
    gid = os.getegid() if gid is None else gid
    linux = spec.setdefault("linux", {})
    namespaces = [ns for ns in linux.get("namespaces", []) if ns.get("type") not in ("network", "user")]
    namespaces.append({"type": "user"})
    linux["namespaces"] = namespaces
    linux["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
    linux.pop("resources", None)

    mounts = []
    for m in spec.get("mounts", []):
        if os.path.normpath(m.get("destination", "")) == "/sys":
            mounts.append({"destination": "/sys", "type": "none", "source": "/sys",
                           "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
            continue
        if "options" in m:
            options = [o for o in m["options"] if not o.startswith(("gid=", "uid="))]
            m = dict(m)
            if options:
                m["options"] = options
            else:
                del m["options"]  # Go: a nil slice is omitted
        mounts.append(m)
    spec["mounts"] = mounts

    known = [k for k in _LINUX_ORDER if k in linux]
    spec["linux"] = {k: linux[k] for k in known + [k for k in linux if k not in _LINUX_ORDER]}
    return spec


def go_error(op: str, path: str, e: OSError) -> KetchError:
    from ketch.runtime.cli.log import go_path_error

    return KetchError(go_path_error(op, path, e))


def write_spec(bundle: str, spec: dict) -> None:
    """Write ``spec`` as ``<bundle>/config.json`` with runc's checks and messages."""
    saved = None
    if bundle:
        saved = os.getcwd()
        try:
            os.chdir(bundle)
        except OSError as e:
            raise go_error("chdir", bundle, e) from None
    try:
        try:
            os.stat(CONFIG)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise go_error("stat", CONFIG, e) from None
        else:
            raise KetchError(f"File {CONFIG} exists. Remove it first")
        data = gofmt.dumps(spec, "\t").encode("utf-8", "surrogateescape")
        try:
            fd = os.open(CONFIG, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        except OSError as e:
            raise go_error("open", CONFIG, e) from None
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except OSError as e:
            raise go_error("write", CONFIG, e) from None
        finally:
            os.close(fd)
    finally:
        if saved is not None:
            os.chdir(saved)


def run(ctx: Context) -> int:
    from ketch.runtime.spec.default import default_spec

    spec = default_spec()
    if ctx.opts["rootless"]:
        to_rootless(spec)
    write_spec(str(ctx.opts["bundle"]), spec)
    return 0
