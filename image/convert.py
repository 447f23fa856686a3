"""Image config -> runtime ``config.json``.

Implements image-spec conversion.md ("Conversion to OCI Runtime Configuration"):

- Verbatim fields: ``Config.WorkingDir`` -> ``process.cwd``; ``Config.Env`` ->
  ``process.env`` (defaults are only added for names the image does not set);
  ``Config.Entrypoint`` + ``Config.Cmd`` -> ``process.args``.
- Annotation fields: ``os``, ``architecture``, ``variant``, ``os.version``,
  ``os.features``, ``author``, ``created``, ``Config.StopSignal`` become
  ``org.opencontainers.image.*`` annotations; ``Config.Labels`` are copied
  unmodified and win over the implicit ones.
- Parsed fields: ``Config.User`` (``uid``, ``uid:gid``, ``user``, ``user:group``)
  resolved against the root filesystem's ``/etc/passwd`` and ``/etc/group``;
  ``additionalGids`` only for a user name without a group; an unknown name is
  an error.
- Optional fields: ``Config.ExposedPorts`` -> ``org.opencontainers.image.exposedPorts``;
  ``Config.Volumes`` -> tmpfs mounts (or ignored).

The implementation-defined defaults come from
:func:`ketch.runtime.spec.default.default_spec` (runc's ``spec``), with a writable
root like other image unpackers produce.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ketch.image.errors import ConvertError, LayerError
from ketch.image.layers.ownership import IdMap
from ketch.image.paths import Root, clean_name
from ketch.runtime.spec.default import default_spec

A = "org.opencontainers.image."
# Annotations a runtime may act on (runc: systemd properties; crun: run.oci.*);
# an image label must not be able to inject them (conversion.md "Annotations").
UNSAFE_ANNOTATION_PREFIXES = ("org.systemd.property.", "run.oci.")
VOLUME_MOUNT_OPTIONS = ["rw", "nosuid", "nodev", "noexec", "relatime"]
_MAX_ID = 2**32 - 2


def _ignore(_msg: str) -> None:
    pass


def _str_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise ConvertError(f"image config {what} must be a list of strings")
    return value


def merge_env(image_env: list[str], defaults: list[str]) -> list[str]:
    """``image_env`` (later duplicates replace earlier ones) plus defaults for unset names.

    Raises :class:`ConvertError` for an entry without ``=`` or with an empty name.
    """
    merged: dict[str, str] = {}
    for entry in image_env:
        name, sep, _ = entry.partition("=")
        if not sep or not name:
            raise ConvertError(f"invalid Env entry {entry!r} in image config (want NAME=value)")
        merged[name] = entry
    for entry in defaults:
        name = entry.partition("=")[0]
        merged.setdefault(name, entry)
    return list(merged.values())


# -- users ------------------------------------------------------------------------


def _parse_db(data: bytes | None, fields: int) -> list[list[str]]:
    if data is None:
        return []
    rows = []
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) >= fields:
            rows.append(parts)
    return rows


def _id(text: str, what: str) -> int:
    value = int(text)
    if not 0 <= value <= _MAX_ID:
        raise ConvertError(f"{what} {text} out of range")
    return value


def resolve_user(user: str, passwd: bytes | None, group: bytes | None) -> dict:
    """Resolve a ``Config.User`` string to ``process.user`` (plus ``home`` when known).

    ``passwd``/``group`` are the contents of the rootfs ``/etc/passwd`` and
    ``/etc/group`` (None if absent). Returns ``{"uid", "gid", ["additionalGids"],
    ["home"]}``; ``home`` is for the caller (HOME), not part of the spec.
    Raises :class:`ConvertError` for unknown names or malformed values.
    Source: image-spec conversion.md "Config.User".
    """
    name, _, grp = user.partition(":")
    if not name:
        raise ConvertError(f"invalid User {user!r} in image config")
    users = _parse_db(passwd, 7)
    entry = None
    if name.isdigit():
        uid = _id(name, "uid")
        entry = next((u for u in users if u[2].isdigit() and int(u[2]) == uid), None)
    else:
        entry = next((u for u in users if u[0] == name), None)
        if entry is None:
            raise ConvertError(f"user {name!r} (from the image config User) not found in "
                               "/etc/passwd of the root filesystem")
        if not (entry[2].isdigit() and entry[3].isdigit()):
            raise ConvertError(f"malformed /etc/passwd entry for user {name!r}")
        uid = _id(entry[2], "uid")
    groups = _parse_db(group, 4)
    out: dict[str, Any] = {"uid": uid}
    if grp:
        if grp.isdigit():
            out["gid"] = _id(grp, "gid")
        else:
            g = next((g for g in groups if g[0] == grp), None)
            if g is None or not g[2].isdigit():
                raise ConvertError(f"group {grp!r} (from the image config User) not found in "
                                   "/etc/group of the root filesystem")
            out["gid"] = _id(g[2], "gid")
    else:
        out["gid"] = _id(entry[3], "gid") if entry is not None and entry[3].isdigit() else 0
        if not name.isdigit():
            extra: list[int] = []
            for g in groups:
                members = [m.strip() for m in g[3].split(",")]
                if name in members and g[2].isdigit() and int(g[2]) not in extra:
                    extra.append(_id(g[2], "gid"))
            if extra:
                out["additionalGids"] = extra
    if entry is not None and entry[5]:
        out["home"] = entry[5]
    return out


def _read_db(root: Root, path: str, warn: Callable[[str], None]) -> bytes | None:
    try:
        return root.read_file(path)
    except LayerError as e:
        # A symlink loop or a FIFO at /etc/passwd is the image's problem: treat
        # the file as absent (named users then fail to resolve, as they must).
        warn(f"ignoring /{path} of the root filesystem: {e}")
        return None


# -- the conversion ---------------------------------------------------------------


def _annotations(config: dict, c: dict, warn: Callable[[str], None]) -> dict[str, str]:
    ann: dict[str, str] = {}

    def put(key: str, value: Any) -> None:
        if value not in (None, "", [], {}):
            ann[A + key] = value if isinstance(value, str) else str(value)

    put("os", config.get("os"))
    put("architecture", config.get("architecture"))
    put("variant", config.get("variant"))
    put("os.version", config.get("os.version"))
    features = config.get("os.features")
    if isinstance(features, list):
        put("os.features", ",".join(str(f) for f in features))
    put("author", config.get("author"))
    put("created", config.get("created"))
    put("stopSignal", c.get("StopSignal"))
    ports = c.get("ExposedPorts")
    if isinstance(ports, dict) and ports:
        put("exposedPorts", ",".join(sorted(ports)))
    labels = c.get("Labels") or {}
    if not isinstance(labels, dict):
        raise ConvertError("image config Labels must be an object")
    for key, value in labels.items():
        if not isinstance(value, str):
            raise ConvertError(f"image config label {key!r} has a non-string value")
        if key.startswith(UNSAFE_ANNOTATION_PREFIXES):
            warn(f"not converting label {key!r}: runtimes may act on this annotation")
            continue
        ann[key] = value
    return ann


def _volume_mounts(c: dict) -> list[dict]:
    volumes = c.get("Volumes") or {}
    if not isinstance(volumes, dict):
        raise ConvertError("image config Volumes must be an object")
    mounts = []
    for path in sorted(volumes):
        try:
            comps = clean_name(path)
        except LayerError:
            raise ConvertError(f"refusing volume {path!r}: it escapes the root filesystem") from None
        if not comps:
            raise ConvertError(f"refusing volume {path!r}: cannot mount over /")
        mounts.append({"destination": "/" + "/".join(comps), "type": "tmpfs",
                       "source": "tmpfs", "options": list(VOLUME_MOUNT_OPTIONS)})
    return mounts


def _user_namespace(spec: dict, uid_map: list[IdMap], gid_map: list[IdMap],
                    rootless: bool) -> None:
    """runtime-spec config-linux.md "User namespace mappings", and for a rootless bundle
    the changes umoci's ``--rootless`` makes (no network namespace, ``/sys`` bound
    from the host read-only, no ``uid=``/``gid=`` mount options, no resources)."""
    linux = spec.setdefault("linux", {})
    if rootless and not uid_map:
        uid_map = [IdMap(0, os.geteuid(), 1)]
    if rootless and not gid_map:
        gid_map = [IdMap(0, os.getegid(), 1)]
    linux["uidMappings"] = [{"containerID": m.container, "hostID": m.host, "size": m.size}
                            for m in uid_map]
    linux["gidMappings"] = [{"containerID": m.container, "hostID": m.host, "size": m.size}
                            for m in gid_map]
    namespaces = [n for n in linux.get("namespaces", []) if n.get("type") != "user"]
    namespaces.append({"type": "user"})
    if not rootless:
        linux["namespaces"] = namespaces
        return
    linux["namespaces"] = [n for n in namespaces if n.get("type") != "network"]
    linux.pop("resources", None)
    spec["process"]["user"].pop("additionalGids", None)
    mounts = []
    for m in spec.get("mounts", []):
        if m.get("destination", "").startswith("/sys"):
            continue
        if "options" in m:
            m["options"] = [o for o in m["options"] if not o.startswith(("uid=", "gid="))]
        mounts.append(m)
    mounts.append({"destination": "/sys", "type": "none", "source": "/sys",
                   "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
    spec["mounts"] = mounts


def convert(config: dict, rootfs: str | None, *, volumes: str = "tmpfs",
            warn: Callable[[str], None] = _ignore, rootless: bool = False,
            uid_map: list[IdMap] | None = None, gid_map: list[IdMap] | None = None) -> dict:
    """Build a runtime ``config.json`` document from an image ``config`` document.

    ``rootfs`` is the unpacked root filesystem (for ``/etc/passwd`` and
    ``/etc/group``; None skips name resolution, numeric users still work).
    ``volumes`` is ``"tmpfs"`` (one tmpfs mount per ``Config.Volumes`` entry) or
    ``"ignore"``. ``uid_map``/``gid_map`` (and ``rootless``, which maps 0 to
    the caller when no map is given) add a user namespace (see
    :func:`_user_namespace`). Raises :class:`ConvertError`.
    """
    if config.get("os", "linux") != "linux":
        raise ConvertError(f"cannot convert an image for os {config.get('os')!r} (need linux)")
    c = config.get("config") or {}
    if not isinstance(c, dict):
        raise ConvertError("image config 'config' must be an object")
    spec = default_spec()
    process = spec["process"]
    spec["root"] = {"path": "rootfs", "readonly": False}

    image_env = _str_list(c.get("Env"), "Env")
    env = merge_env(image_env, process["env"])

    args = _str_list(c.get("Entrypoint"), "Entrypoint") + _str_list(c.get("Cmd"), "Cmd")
    if args:
        process["args"] = args

    cwd = c.get("WorkingDir") or "/"
    if not isinstance(cwd, str):
        raise ConvertError("image config WorkingDir must be a string")
    # runtime-spec wants an absolute cwd; Docker treats a relative WorkingDir as from /.
    process["cwd"] = cwd if cwd.startswith("/") else "/" + cwd

    user = c.get("User") or ""
    if not isinstance(user, str):
        raise ConvertError("image config User must be a string")
    passwd = group = None
    if rootfs is not None:
        with Root(rootfs) as root:
            passwd = _read_db(root, "etc/passwd", warn)
            group = _read_db(root, "etc/group", warn)
    if user:
        resolved = resolve_user(user, passwd, group)
    else:
        resolved = resolve_user("0", passwd, group)
        resolved.pop("additionalGids", None)
    home = resolved.pop("home", None)
    process["user"] = resolved
    if home and not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={home}")
    process["env"] = env

    spec["annotations"] = _annotations(config, c, warn)
    if volumes == "tmpfs":
        spec["mounts"].extend(_volume_mounts(c))
    elif volumes != "ignore":
        raise ConvertError(f"unknown volumes mode {volumes!r}")
    spec.get("linux", {}).pop("seccomp", None)
    if rootless or uid_map or gid_map:
        _user_namespace(spec, list(uid_map or []), list(gid_map or []), rootless)
    return spec
