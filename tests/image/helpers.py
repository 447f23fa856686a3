"""Test helpers: build layer tars and OCI layouts by hand, list a rootfs, check a layout.

Deliberately independent of ``ketch.image`` (plain tarfile/json/hashlib), so the
tests do not trust the code they test to produce their inputs.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"

MTIME = 1_600_000_000


# -- running the CLI -----------------------------------------------------------------


def ketch_image_cmd() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "ketch-image")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-m", "ketch.image.cli"]


def run_ki(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``ketch-image ARGS``; with check, fail the test (showing stderr) on non-zero exit."""
    p = subprocess.run([*ketch_image_cmd(), *args], capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"ketch-image {' '.join(args)} failed ({p.returncode}):\n"
                             f"{p.stderr}")
    return p


# -- tar entries ---------------------------------------------------------------------


@dataclass
class Entry:
    info: tarfile.TarInfo
    data: bytes | None = None


def _info(name: str, type_: bytes, mode: int, uid: int = 0, gid: int = 0,
          mtime: int = MTIME) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = type_
    ti.mode = mode
    ti.uid, ti.gid = uid, gid
    ti.mtime = mtime
    return ti


def F(name: str, data: bytes = b"", mode: int = 0o644, **kw) -> Entry:
    ti = _info(name, tarfile.REGTYPE, mode, **kw)
    ti.size = len(data)
    return Entry(ti, data)


def D(name: str, mode: int = 0o755, **kw) -> Entry:
    return Entry(_info(name, tarfile.DIRTYPE, mode, **kw))


def L(name: str, target: str, **kw) -> Entry:
    ti = _info(name, tarfile.SYMTYPE, 0o777, **kw)
    ti.linkname = target
    return Entry(ti)


def H(name: str, target: str, mode: int = 0o644, **kw) -> Entry:
    ti = _info(name, tarfile.LNKTYPE, mode, **kw)
    ti.linkname = target
    return Entry(ti)


def FIFO(name: str, mode: int = 0o600, **kw) -> Entry:
    return Entry(_info(name, tarfile.FIFOTYPE, mode, **kw))


def CHR(name: str, major: int, minor: int, mode: int = 0o666, **kw) -> Entry:
    ti = _info(name, tarfile.CHRTYPE, mode, **kw)
    ti.devmajor, ti.devminor = major, minor
    return Entry(ti)


def WH(name: str) -> Entry:
    """A whiteout (or opaque whiteout) entry: an empty regular file."""
    return F(name, b"", 0o600)


def make_tar(entries: list[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            tf.addfile(e.info, io.BytesIO(e.data) if e.data is not None else None)
    return buf.getvalue()


def busybox_entries() -> list[Entry]:
    """A small busybox-static root filesystem: the binary, its applet symlinks, /etc files."""
    with open("/bin/busybox", "rb") as f:
        bb = f.read()
    out = [D("bin"), F("bin/busybox", bb, 0o755), D("etc"), D("tmp", 0o1777), D("root", 0o700)]
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    out += [L(f"bin/{a}", "busybox") for a in sorted(applets) if a != "busybox"]
    out += [
        F("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                        b"app:x:1000:1000:app:/home/app:/bin/sh\n"
                        b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
        F("etc/group", b"root:x:0:\nwheel:x:10:app\nstaff:x:50:app,root\napp:x:1000:\n"
                       b"nogroup:x:65534:\n"),
        F("etc/motd", b"welcome\n"),
        D("opt"), D("opt/app"), F("opt/app/old.txt", b"old\n"), D("opt/app/sub"),
        F("opt/app/sub/deep.txt", b"deep\n"),
    ]
    return out


def second_layer_entries() -> list[Entry]:
    """Deletes /etc/motd with a whiteout and replaces /opt/app with an opaque directory."""
    return [
        D("etc"), WH("etc/.wh.motd"),
        D("opt"), D("opt/app", 0o750), WH("opt/app/.wh..wh..opq"),
        F("opt/app/new.txt", b"new\n"),
    ]


# -- OCI layouts ---------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class LayoutBuilder:
    """Write an OCI image layout with hand-made blobs, manifests and indexes."""

    path: str
    tags: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        os.makedirs(os.path.join(self.path, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(self.path, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        self._write_index()

    def blob(self, data: bytes, media_type: str) -> dict:
        digest = sha256(data)
        with open(os.path.join(self.path, "blobs", "sha256", digest[7:]), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def image(self, layers: list[list[Entry] | bytes], *, config: dict | None = None,
              arch: str = "amd64", os_: str = "linux", compress: bool = True,
              variant: str | None = None) -> dict:
        """An image manifest over ``layers`` (entry lists or raw tar bytes); returns its descriptor."""
        layer_descs, diff_ids = [], []
        for layer in layers:
            tar = layer if isinstance(layer, bytes) else make_tar(layer)
            diff_ids.append(sha256(tar))
            if compress:
                blob = gzip.compress(tar, mtime=0)
                layer_descs.append(self.blob(blob, OCI_LAYER_GZIP))
            else:
                layer_descs.append(self.blob(tar, OCI_LAYER))
        cfg = {"architecture": arch, "os": os_, "created": "2020-09-13T12:26:40Z",
               "config": config or {}, "rootfs": {"type": "layers", "diff_ids": diff_ids},
               "history": [{"created_by": "tests"} for _ in layers]}
        if variant:
            cfg["variant"] = variant
        cdesc = self.blob(json.dumps(cfg).encode(), OCI_CONFIG)
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cdesc,
                    "layers": layer_descs}
        return self.blob(json.dumps(manifest).encode(), OCI_MANIFEST)

    def index(self, entries: list[tuple[dict, dict]]) -> dict:
        """An image index over ``(manifest descriptor, platform)`` pairs."""
        manifests = [{**d, "platform": p} for d, p in entries]
        doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        return self.blob(json.dumps(doc).encode(), OCI_INDEX)

    def tag(self, name: str, desc: dict) -> None:
        self.tags[name] = {**desc, "annotations": {REF_NAME: name}}
        self._write_index()

    def _write_index(self) -> None:
        doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(self.tags.values())}
        with open(os.path.join(self.path, "index.json"), "w") as f:
            json.dump(doc, f)


def check_layout(path: str) -> dict:
    """Assert ``path`` is a valid OCI layout: marker, index, every blob matches its name,
    every descriptor reachable from index.json is present with the right size.
    Returns the parsed index.json."""
    with open(os.path.join(path, "oci-layout")) as f:
        assert json.load(f) == {"imageLayoutVersion": "1.0.0"}
    with open(os.path.join(path, "index.json")) as f:
        index = json.load(f)
    assert index["schemaVersion"] == 2
    blobs = os.path.join(path, "blobs")
    for alg in os.listdir(blobs):
        for name in os.listdir(os.path.join(blobs, alg)):
            p = os.path.join(blobs, alg, name)
            assert stat.S_ISREG(os.lstat(p).st_mode), p
            with open(p, "rb") as f:
                assert hashlib.new(alg, f.read()).hexdigest() == name, f"corrupt blob {p}"

    def walk(desc: dict) -> None:
        alg, hexd = desc["digest"].split(":")
        p = os.path.join(blobs, alg, hexd)
        assert os.path.exists(p), f"missing blob {desc['digest']}"
        assert os.path.getsize(p) == desc["size"]
        if desc["mediaType"] in (OCI_INDEX, "application/vnd.docker.distribution.manifest.list.v2+json"):
            with open(p) as f:
                for m in json.load(f)["manifests"]:
                    walk(m)
        elif desc["mediaType"] in (OCI_MANIFEST,
                                   "application/vnd.docker.distribution.manifest.v2+json"):
            with open(p) as f:
                doc = json.load(f)
            for d in [doc["config"], *doc["layers"]]:
                walk(d)

    for d in index["manifests"]:
        walk(d)
    return index


def layout_tags(path: str) -> dict[str, dict]:
    with open(os.path.join(path, "index.json")) as f:
        return {d["annotations"][REF_NAME]: d for d in json.load(f)["manifests"]
                if REF_NAME in d.get("annotations", {})}


# -- rootfs listings -----------------------------------------------------------------


def listing(root: str) -> dict[str, tuple]:
    """``path -> (type, mode, "uid:gid", size, sha256, link target / device, nlink)`` for
    every entry under ``root`` (root itself as ``.``), never following symlinks."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in ["", *dirnames, *filenames] if dirpath == root else [*dirnames, *filenames]:
            p = os.path.join(dirpath, name) if name else dirpath
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            m = st.st_mode
            kind = ("dir" if stat.S_ISDIR(m) else "file" if stat.S_ISREG(m) else
                    "symlink" if stat.S_ISLNK(m) else "fifo" if stat.S_ISFIFO(m) else
                    "chr" if stat.S_ISCHR(m) else "blk" if stat.S_ISBLK(m) else "other")
            size = digest = extra = None
            if kind == "file":
                size = st.st_size
                with open(p, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            elif kind == "symlink":
                extra = os.readlink(p)
            elif kind in ("chr", "blk"):
                extra = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
            out[rel] = (kind, oct(stat.S_IMODE(m)) if kind != "symlink" else None,
                        f"{st.st_uid}:{st.st_gid}", size, digest, extra,
                        st.st_nlink if kind not in ("dir",) else None)
    return out


# -- pushing by hand -----------------------------------------------------------------


def push_blob(host: str, repo: str, data: bytes) -> str:
    """Monolithic blob upload (distribution-spec POST then PUT ?digest=); returns the digest."""
    import requests

    digest = sha256(data)
    r = requests.post(f"http://{host}/v2/{repo}/blobs/uploads/", timeout=30)
    assert r.status_code == 202, r.text
    location = r.headers["Location"]
    if location.startswith("/"):
        location = f"http://{host}{location}"
    sep = "&" if "?" in location else "?"
    r = requests.put(f"{location}{sep}digest={digest}", data=data, timeout=30,
                     headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    return digest


def push_manifest(host: str, repo: str, ref: str, body: bytes, media_type: str) -> None:
    import requests

    r = requests.put(f"http://{host}/v2/{repo}/manifests/{ref}", data=body, timeout=30,
                     headers={"Content-Type": media_type})
    assert r.status_code == 201, r.text


def push_layout_image(host: str, repo: str, ref: str, layout: str, tag: str) -> None:
    """Push ``layout:tag`` (a single manifest) byte for byte, without any re-encoding."""
    desc = layout_tags(layout)[tag]

    def read(d: dict) -> bytes:
        with open(os.path.join(layout, "blobs", *d["digest"].split(":")), "rb") as f:
            return f.read()

    body = read(desc)
    doc = json.loads(body)
    for d in [doc["config"], *doc["layers"]]:
        push_blob(host, repo, read(d))
    push_manifest(host, repo, ref, body, desc["mediaType"])
