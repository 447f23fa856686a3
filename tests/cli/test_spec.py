"""``ketch spec`` and ``ketch spec --rootless`` against ``runc spec``.

runc 1.1.5 writes ``json.MarshalIndent(spec, "", "\\t")`` without a final
newline; ketch's spec differs only in ``hostname`` ("runc" vs "ketch").
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest

from ketch.runtime.cli.commands.spec import to_rootless
from ketch.runtime.spec.default import default_spec

from .conftest import RUNC, run_subprocess

needs_runc = pytest.mark.skipif(RUNC is None, reason="runc is not installed")


def runc_spec(bundle, *args: str, user: int | None = None) -> bytes:
    subprocess.run([RUNC, "spec", "-b", str(bundle), *args], check=True, user=user,
                   group=user, extra_groups=[] if user is not None else None,
                   capture_output=True, timeout=60)
    return (bundle / "config.json").read_bytes()


def ketch_spec(ketch, bundle, *args: str) -> bytes:
    r = ketch("spec", "-b", str(bundle), *args)
    assert (r.rc, r.out, r.err) == (0, "", ""), r
    return (bundle / "config.json").read_bytes()


def fields(doc: object, prefix: str = "") -> dict[str, object]:
    """Flatten a JSON document into {dotted.path: leaf} for a field-by-field diff."""
    if isinstance(doc, dict):
        out: dict[str, object] = {}
        for k, v in doc.items():
            out.update(fields(v, f"{prefix}.{k}" if prefix else k))
        return out or {prefix: {}}
    if isinstance(doc, list):
        out = {}
        for i, v in enumerate(doc):
            out.update(fields(v, f"{prefix}[{i}]"))
        return out or {prefix: []}
    return {prefix: doc}


def compare_with_runc(ours: bytes, theirs: bytes) -> None:
    a, b = fields(json.loads(ours)), fields(json.loads(theirs))
    assert (a.pop("hostname"), b.pop("hostname")) == ("ketch", "runc")
    assert list(a.items()) == list(b.items())  # same fields, same values, same order
    assert ours == theirs.replace(b'"hostname": "runc"', b'"hostname": "ketch"')


@needs_runc
@pytest.mark.runc
def test_spec_matches_runc(ketch, tmp_path) -> None:
    (tmp_path / "k").mkdir()
    (tmp_path / "r").mkdir()
    compare_with_runc(ketch_spec(ketch, tmp_path / "k"), runc_spec(tmp_path / "r"))


@needs_runc
@pytest.mark.runc
def test_spec_rootless_matches_runc(ketch, tmp_path) -> None:
    (tmp_path / "k").mkdir()
    (tmp_path / "r").mkdir()
    compare_with_runc(ketch_spec(ketch, tmp_path / "k", "--rootless"),
                      runc_spec(tmp_path / "r", "--rootless"))


@needs_runc
@pytest.mark.runc
@pytest.mark.skipif(os.geteuid() != 0, reason="switches to nobody")
def test_spec_rootless_as_another_user_matches_runc() -> None:
    top = tempfile.mkdtemp(prefix="ketch-spec-")  # pytest's tmp_path is not reachable for nobody
    try:
        os.chmod(top, 0o755)
        bundles = {}
        for d in ("k", "r"):
            bundles[d] = pathlib.Path(top, d)
            bundles[d].mkdir()
            os.chown(bundles[d], 65534, 65534)
        theirs = runc_spec(bundles["r"], "--rootless", user=65534)
        code = ("import sys; from ketch.runtime.cli import main;"
                f" sys.exit(main(['ketch', 'spec', '--rootless', '-b', {str(bundles['k'])!r}]))")
        p = subprocess.run([sys.executable, "-c", code], user=65534, group=65534, extra_groups=[],
                           capture_output=True, text=True, timeout=60, cwd="/")
        if p.returncode != 0 and "Permission denied" in p.stderr:
            pytest.skip("the interpreter or the sources are not readable by nobody")
        assert p.returncode == 0, p.stderr
        ours = (bundles["k"] / "config.json").read_bytes()
    finally:
        shutil.rmtree(top)
    compare_with_runc(ours, theirs)
    assert json.loads(ours)["linux"]["uidMappings"] == [{"containerID": 0, "hostID": 65534, "size": 1}]


def test_spec_format(ketch, tmp_path) -> None:
    data = ketch_spec(ketch, tmp_path)
    assert data.startswith(b'{\n\t"ociVersion": "1.0.2-dev",\n\t"process": {\n\t\t"terminal": true,')
    assert data.endswith(b"\n\t}\n}")  # no newline after the last brace
    assert json.loads(data) == {**default_spec()}


def test_spec_mode_follows_umask(ketch, tmp_path) -> None:
    old = os.umask(0o022)
    try:
        ketch_spec(ketch, tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "config.json").st_mode) == 0o644


def test_spec_in_current_directory(ketch, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert ketch("spec").rc == 0 and (tmp_path / "config.json").exists()


def test_spec_keeps_cwd(ketch, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "b").mkdir()
    assert ketch("spec", "--bundle=b").rc == 0
    assert os.getcwd() == str(tmp_path) and (tmp_path / "b/config.json").exists()


def err_msg(err: str) -> str:
    prefix, _, rest = err.partition(" level=error msg=")
    assert prefix.startswith("time=") and rest.endswith("\n"), err
    return rest[:-1]


def test_spec_refuses_existing_config(ketch, tmp_path) -> None:
    (tmp_path / "config.json").write_text("mine")
    r = ketch("spec", "-b", str(tmp_path))
    assert (r.rc, r.out) == (1, "") and err_msg(r.err) == '"File config.json exists. Remove it first"'
    assert (tmp_path / "config.json").read_text() == "mine"
    (tmp_path / "d").mkdir()
    (tmp_path / "d/config.json").mkdir()
    r = ketch("spec", "-b", str(tmp_path / "d"))
    assert r.rc == 1 and err_msg(r.err) == '"File config.json exists. Remove it first"'


def test_spec_dangling_symlink(ketch, tmp_path) -> None:
    # os.Stat follows the link: not there, so runc writes through it
    (tmp_path / "config.json").symlink_to(tmp_path / "elsewhere.json")
    assert ketch("spec", "-b", str(tmp_path)).rc == 0
    assert json.loads((tmp_path / "elsewhere.json").read_text())["hostname"] == "ketch"
    (tmp_path / "d").mkdir()
    (tmp_path / "d/config.json").symlink_to("/nonexistent/x.json")
    r = ketch("spec", "-b", str(tmp_path / "d"))
    assert r.rc == 1 and err_msg(r.err) == '"open config.json: no such file or directory"'


def test_spec_bad_bundle(ketch, tmp_path) -> None:
    r = ketch("spec", "-b", str(tmp_path / "missing"))
    assert r.rc == 1 and err_msg(r.err) == f'"chdir {tmp_path}/missing: no such file or directory"'
    (tmp_path / "file").write_text("")
    r = ketch("spec", "-b", str(tmp_path / "file"))
    assert r.rc == 1 and err_msg(r.err) == f'"chdir {tmp_path}/file: not a directory"'


def test_to_rootless_rules() -> None:
    spec = default_spec()
    spec["mounts"].append({"destination": "/x", "type": "tmpfs", "source": "tmpfs",
                           "options": ["uid=5", "gid=5"]})
    spec["mounts"].append({"destination": "/sys/", "type": "sysfs", "source": "sysfs"})
    spec["linux"]["namespaces"].insert(0, {"type": "user", "path": "/proc/1/ns/user"})
    out = to_rootless(spec, uid=1000, gid=100)
    linux = out["linux"]
    assert list(linux) == ["uidMappings", "gidMappings", "namespaces", "maskedPaths", "readonlyPaths"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": 100, "size": 1}]
    assert [n["type"] for n in linux["namespaces"]] == ["pid", "ipc", "uts", "mount", "user"]
    assert linux["namespaces"][-1] == {"type": "user"}
    by_dest = {m["destination"]: m for m in out["mounts"]}
    assert "options" not in by_dest["/x"]                     # emptied: omitted like a nil slice
    assert "gid=5" not in by_dest["/dev/pts"]["options"]
    assert by_dest["/sys"] == {"destination": "/sys", "type": "none", "source": "/sys",
                               "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
    assert [m["destination"] for m in out["mounts"]].count("/sys") == 2  # "/sys/" is /sys too
    assert "/sys/fs/cgroup" in by_dest                        # runc 1.1 keeps the cgroup mount


def test_spec_runs_without_the_library(tmp_path) -> None:
    p = run_subprocess(["spec", "-b", str(tmp_path)], fake_backend=False)
    assert p.returncode == 0 and (tmp_path / "config.json").exists()
