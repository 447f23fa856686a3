"""Mount options beyond mount(2)'s flags: the recursive forms (``rro``, ...),
runc's ``tmpcopyup`` and idmapped bind mounts (``idmap``/``ridmap`` with or
without mount mappings), end to end; runc 1.1.5 side by side where it has the
option (it predates idmapped mounts).

runtime-spec config.md "Mounts" and "Mount Options" (config-linux.md).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Runtime, cgroup_leftovers, children, reap_zombies

# mount point and per-mount options of the test's mounts, from mountinfo
MOUNTS = "grep -E ' /(mnt|data|idm)[ /]' /proc/self/mountinfo | cut -d' ' -f5,6 | sort"


@pytest.fixture
def host_tree(tmp_path: Path) -> Iterator[Path]:
    """A host directory ``src`` holding a file owned by root and a tmpfs submount
    ``src/sub`` (so recursive options have a mount below the top to act on);
    every directory on the way is traversable by other uids."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "file").write_text("host\n")
    for d in (tmp_path, src):
        os.chmod(d, 0o755)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", str(src / "sub")],
                   check=True)
    (src / "sub" / "inner").write_text("inner\n")
    try:
        yield src
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run(["umount", "-l", str(src / "sub")], check=True)


def _traversable(bundle: Path) -> None:
    for parent in [bundle, *bundle.parents]:
        if parent == Path("/tmp"):
            break
        os.chmod(parent, os.stat(parent).st_mode | 0o111)


@pytest.mark.runc
def test_rro_makes_every_submount_read_only_like_runc(runc: Runtime, ketch: Runtime,
                                                       make_bundle, host_tree: Path) -> None:
    """``rbind,rro``: the bind and the tmpfs below it are both read-only (a plain
    ``ro`` leaves submounts writable; mount_setattr(AT_RECURSIVE) reaches them)."""
    script = ("touch /mnt/top 2>/dev/null; echo top=$?; touch /mnt/sub/x 2>/dev/null; "
              f"echo sub=$?; cat /mnt/sub/inner; {MOUNTS}")

    def edit(c: dict) -> None:
        c["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(host_tree),
                            "options": ["rbind", "rro", "rnosuid"]})

    bundle = make_bundle(["sh", "-c", script], edit=edit)
    r = runc("run", "-b", str(bundle), runc.new_id("rro"))
    k = ketch("run", "-b", str(bundle), ketch.new_id("rro"))
    assert r.rc == 0, str(r)
    assert (k.rc, k.out) == (r.rc, r.out), f"runc:  {r}\nketch: {k}"
    lines = k.out.splitlines()
    assert lines[:3] == ["top=1", "sub=1", "inner"]
    assert [line.split()[1].startswith("ro,nosuid") for line in lines[3:]] == [True, True], k.out
    assert not (host_tree / "top").exists() and not (host_tree / "sub" / "x").exists()


@pytest.mark.runc
def test_tmpcopyup_copies_the_covered_directory_like_runc(runc: Runtime, ketch: Runtime,
                                                         make_bundle) -> None:
    """runc's ``tmpcopyup``: the tmpfs starts with what the image had at the mount
    point (modes, owners, symlinks), takes the directory's mode, and writes stay
    in the tmpfs."""
    listing = ("cd /data && find . | sort | while read -r p; do "
               "stat -c '%n %A %u:%g %s' \"$p\"; done; readlink link; "
               "touch new && echo wrote; grep ' /data ' /proc/self/mountinfo | cut -d' ' -f9")

    def edit(c: dict) -> None:
        c["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                            "options": ["tmpcopyup", "nosuid"]})

    bundle = make_bundle(["sh", "-c", listing], edit=edit)
    data = bundle / "rootfs" / "data"
    (data / "d").mkdir(parents=True)
    (data / "d" / "f").write_text("copied\n")
    os.chown(data / "d" / "f", 1000, 1000)
    os.chmod(data / "d" / "f", 0o640)
    os.symlink("/etc/passwd", data / "link")
    os.chmod(data, 0o750)
    r = runc("run", "-b", str(bundle), runc.new_id("copyup"))
    k = ketch("run", "-b", str(bundle), ketch.new_id("copyup"))
    assert r.rc == 0, str(r)
    assert (k.rc, k.out) == (r.rc, r.out), f"runc:  {r}\nketch: {k}"
    assert ". drwxr-x--- 0:0" in k.out and "./d/f -rw-r----- 1000:1000 7" in k.out, k.out
    assert "wrote\ntmpfs" in k.out
    assert not (data / "new").exists(), "a write reached the image's directory"


def test_idmap_with_mount_mappings(ketch: Runtime, make_bundle, host_tree: Path) -> None:
    """``idmap`` with the mount's own mappings: a host file owned by 0 shows as
    1000 (containerID 0 -> hostID 1000); the submount of an ``rbind`` is not
    idmapped with ``idmap`` and is with ``ridmap``."""
    maps = [{"containerID": 0, "hostID": 1000, "size": 1}]

    def edit(c: dict) -> None:
        for dest, kind in (("/mnt", "idmap"), ("/idm", "ridmap")):
            c["mounts"].append({"destination": dest, "type": "bind", "source": str(host_tree),
                                "options": ["rbind", kind], "uidMappings": maps,
                                "gidMappings": maps})

    bundle = make_bundle(["sh", "-c", "stat -c '%u:%g' /mnt/file /idm/file /mnt/sub/inner "
                                      f"/idm/sub/inner; {MOUNTS}"], edit=edit)
    k = ketch("run", "-b", str(bundle), ketch.new_id("idmap"))
    assert k.rc == 0, str(k)
    lines = k.out.splitlines()
    assert lines[:4] == ["1000:1000", "1000:1000", "0:0", "1000:1000"], k.out
    mounted = dict(line.split(" ", 1) for line in lines[4:])
    assert "idmapped" in mounted["/mnt"] and "idmapped" not in mounted["/mnt/sub"], k.out
    assert "idmapped" in mounted["/idm"] and "idmapped" in mounted["/idm/sub"], k.out


def test_idmap_takes_the_container_user_namespace(ketch: Runtime, make_bundle,
                                                  host_tree: Path) -> None:
    """``idmap`` without mount mappings in a container with a user namespace: host
    root's files show as the container's root, where a plain bind shows the
    overflow id, and a file the container creates is host root's on disk."""
    rng = [{"containerID": 0, "hostID": 100000, "size": 65536}]

    def edit(c: dict) -> None:
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = c["linux"]["gidMappings"] = rng
        c["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(host_tree),
                            "options": ["bind", "idmap"]})
        # rbind: a plain bind would uncover host_tree/sub, which the kernel refuses
        # in a user namespace
        c["mounts"].append({"destination": "/data", "type": "bind",
                            "source": str(host_tree), "options": ["rbind"]})

    bundle = make_bundle(["sh", "-c", "stat -c '%u:%g' /mnt/file /data/file; "
                                      "echo c > /mnt/made"], edit=edit)
    _traversable(bundle)
    # the container's root (host uid 100000) cannot create mount points in the image
    for d in ("mnt", "data"):
        (bundle / "rootfs" / d).mkdir()
    k = ketch("run", "-b", str(bundle), ketch.new_id("idmapns"))
    assert k.rc == 0, str(k)
    assert k.out.splitlines() == ["0:0", "65534:65534"], k.out
    st = (host_tree / "made").stat()
    assert (st.st_uid, st.st_gid) == (0, 0)


@pytest.mark.parametrize("case", ["not-a-bind", "only-uid-mappings", "no-userns",
                                  "copyup-on-bind", "fs-without-idmap"])
def test_bad_idmap_or_copyup_leaves_nothing(case: str, ketch: Runtime, make_bundle,
                                            host_tree: Path) -> None:
    maps = [{"containerID": 0, "hostID": 1000, "size": 1}]
    mount = {"destination": "/mnt", "type": "bind", "source": str(host_tree),
             "options": ["bind", "idmap"], "uidMappings": maps, "gidMappings": maps}
    words = {"not-a-bind": "only supported for bind mounts",
             "only-uid-mappings": "mounts[7].gidMappings",
             "no-userns": "needs uidMappings/gidMappings or a user namespace",
             "copyup-on-bind": "tmpcopyup needs a tmpfs mount",
             "fs-without-idmap": "idmapped mount of '/sys/kernel' at '/mnt'"}[case]
    if case == "not-a-bind":
        mount.update(type="tmpfs", source="tmpfs", options=["idmap"])
    elif case == "only-uid-mappings":
        del mount["gidMappings"]
    elif case == "no-userns":
        del mount["uidMappings"], mount["gidMappings"]
    elif case == "copyup-on-bind":
        mount["options"] = ["bind", "tmpcopyup"]
        del mount["uidMappings"], mount["gidMappings"]
    else:  # sysfs cannot be idmapped: the kernel refuses at create
        mount["source"] = "/sys/kernel"

    def edit(c: dict) -> None:
        c["mounts"].append(mount)
        assert len(c["mounts"]) == 8  # the index named in one message above

    bundle = make_bundle(["true"], edit=edit)
    cid = ketch.new_id("badmnt")
    reap_zombies()
    before = set(children())
    r = ketch("create", "-b", str(bundle), cid)
    assert r.rc == 1 and len(r.err.strip().splitlines()) == 1, str(r)
    assert words in r.msg, str(r)
    assert not ketch.root.exists() or os.listdir(ketch.root) == []
    assert cgroup_leftovers(cid) == []
    # no init left behind, not even a zombie (we are the subreaper)
    assert set(children()) - before == set(), children()
