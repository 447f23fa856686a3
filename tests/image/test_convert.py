"""Image config -> config.json (image-spec conversion.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ketch.image.convert import convert, merge_env, resolve_user
from ketch.image.errors import ConvertError
from ketch.runtime.spec.default import DEFAULT_PATH, default_spec

PASSWD = (b"root:x:0:0:root:/root:/bin/sh\n# comment\n\napp:x:1000:1001:App:/home/app:/bin/sh\n"
          b"svc:x:200:200::/srv:/bin/false\nbroken line\n")
GROUP = b"root:x:0:\nwheel:x:10:app,root\nstaff:x:50:root, app\napp:x:1001:\nweb:x:33:\n"


@pytest.fixture
def rootfs(tmp_path: Path) -> str:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_bytes(PASSWD)
    (tmp_path / "etc/group").write_bytes(GROUP)
    return str(tmp_path)


def cfg(**config: object) -> dict:
    return {"architecture": "amd64", "os": "linux", "config": config,
            "rootfs": {"type": "layers", "diff_ids": []}}


def test_defaults_come_from_runtime_default_spec(rootfs: str) -> None:
    spec = convert(cfg(), rootfs)
    base = default_spec()
    assert spec["process"]["args"] == base["process"]["args"]
    assert spec["mounts"] == base["mounts"]
    assert spec["linux"]["namespaces"] == base["linux"]["namespaces"]
    assert spec["root"] == {"path": "rootfs", "readonly": False}
    assert spec["process"]["cwd"] == "/"
    assert spec["process"]["user"] == {"uid": 0, "gid": 0}
    assert f"PATH={DEFAULT_PATH}" in spec["process"]["env"]
    assert "HOME=/root" in spec["process"]["env"]


def test_entrypoint_and_cmd(rootfs: str) -> None:
    assert convert(cfg(Entrypoint=["/bin/app", "-v"], Cmd=["run"]), rootfs)["process"]["args"] == [
        "/bin/app", "-v", "run"]
    assert convert(cfg(Cmd=["sh", "-c", "x"]), rootfs)["process"]["args"] == ["sh", "-c", "x"]
    assert convert(cfg(Entrypoint=["/e"]), rootfs)["process"]["args"] == ["/e"]
    with pytest.raises(ConvertError):
        convert(cfg(Cmd="sh"), rootfs)


def test_env_merge() -> None:
    assert merge_env(["PATH=/bin", "A=1", "A=2", "EMPTY="], ["PATH=/usr/bin", "TERM=xterm"]) == [
        "PATH=/bin", "A=2", "EMPTY=", "TERM=xterm"]
    for bad in (["NOEQUALS"], ["=value"]):
        with pytest.raises(ConvertError):
            merge_env(bad, [])


def test_env_in_spec_keeps_image_values(rootfs: str) -> None:
    env = convert(cfg(Env=["PATH=/opt/bin", "HOME=/custom"], User="app"), rootfs)["process"]["env"]
    assert env == ["PATH=/opt/bin", "HOME=/custom", "TERM=xterm"]


def test_working_dir(rootfs: str) -> None:
    assert convert(cfg(WorkingDir="/srv/app"), rootfs)["process"]["cwd"] == "/srv/app"
    assert convert(cfg(WorkingDir="rel"), rootfs)["process"]["cwd"] == "/rel"


@pytest.mark.parametrize("user,expected", [
    ("1000", {"uid": 1000, "gid": 1001, "home": "/home/app"}),
    ("4242", {"uid": 4242, "gid": 0}),
    ("4242:77", {"uid": 4242, "gid": 77}),
    ("app", {"uid": 1000, "gid": 1001, "additionalGids": [10, 50], "home": "/home/app"}),
    ("app:web", {"uid": 1000, "gid": 33, "home": "/home/app"}),
    ("app:5", {"uid": 1000, "gid": 5, "home": "/home/app"}),
    ("1000:web", {"uid": 1000, "gid": 33, "home": "/home/app"}),
    ("svc", {"uid": 200, "gid": 200, "home": "/srv"}),
])
def test_resolve_user(user: str, expected: dict) -> None:
    assert resolve_user(user, PASSWD, GROUP) == expected


@pytest.mark.parametrize("user,match", [
    ("ghost", "not found"), ("app:nogroup", "not found"), (":10", "invalid"),
    ("99999999999", "range"),
])
def test_resolve_user_errors(user: str, match: str) -> None:
    with pytest.raises(ConvertError, match=match):
        resolve_user(user, PASSWD, GROUP)


def test_named_user_without_passwd_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConvertError, match="not found"):
        convert(cfg(User="app"), str(tmp_path))
    assert convert(cfg(User="7:8"), str(tmp_path))["process"]["user"] == {"uid": 7, "gid": 8}


def test_user_in_spec(rootfs: str) -> None:
    spec = convert(cfg(User="app"), rootfs)
    assert spec["process"]["user"] == {"uid": 1000, "gid": 1001, "additionalGids": [10, 50]}
    assert "HOME=/home/app" in spec["process"]["env"]


def test_passwd_symlink_is_resolved_inside_rootfs(tmp_path: Path) -> None:
    # /etc/passwd -> /host-passwd must read rootfs/host-passwd, never the host's file
    (tmp_path / "etc").mkdir()
    (tmp_path / "host-passwd").write_bytes(b"inside:x:321:321::/in:/bin/sh\n")
    (tmp_path / "etc/passwd").symlink_to("/host-passwd")
    (tmp_path / "etc/group").symlink_to("../../../../../../etc/group")  # a loop once re-rooted
    warnings: list[str] = []
    spec = convert(cfg(User="inside"), str(tmp_path), warn=warnings.append)
    assert spec["process"]["user"] == {"uid": 321, "gid": 321}
    assert any("symbolic links" in w for w in warnings)
    with pytest.raises(ConvertError):
        convert(cfg(User="root"), str(tmp_path))  # the host has root, the image does not


def test_annotations(rootfs: str) -> None:
    config = cfg(StopSignal="SIGTERM", ExposedPorts={"80/tcp": {}, "53/udp": {}},
                 Labels={"org.opencontainers.image.os": "label-wins", "com.example.x": "1",
                         "org.systemd.property.ExecStartPre": "/bin/evil"})
    config.update({"variant": "v8", "os.version": "10", "os.features": ["a", "b"],
                   "author": "me", "created": "2020-01-01T00:00:00Z"})
    warnings: list[str] = []
    ann = convert(config, rootfs, warn=warnings.append)["annotations"]
    assert ann == {
        "org.opencontainers.image.os": "label-wins",
        "org.opencontainers.image.architecture": "amd64",
        "org.opencontainers.image.variant": "v8",
        "org.opencontainers.image.os.version": "10",
        "org.opencontainers.image.os.features": "a,b",
        "org.opencontainers.image.author": "me",
        "org.opencontainers.image.created": "2020-01-01T00:00:00Z",
        "org.opencontainers.image.stopSignal": "SIGTERM",
        "org.opencontainers.image.exposedPorts": "53/udp,80/tcp",
        "com.example.x": "1",
    }
    assert any("org.systemd.property" in w for w in warnings)


def test_volumes(rootfs: str) -> None:
    spec = convert(cfg(Volumes={"/data": {}, "/var//lib/./db/": {}}), rootfs)
    extra = spec["mounts"][len(default_spec()["mounts"]):]
    assert [m["destination"] for m in extra] == ["/data", "/var/lib/db"]
    assert all(m["type"] == "tmpfs" for m in extra)
    assert len(convert(cfg(Volumes={"/data": {}}), rootfs, volumes="ignore")["mounts"]) == len(
        default_spec()["mounts"])
    for bad in ("/../../etc", "/"):
        with pytest.raises(ConvertError):
            convert(cfg(Volumes={bad: {}}), rootfs)


def test_non_linux_image_is_refused(rootfs: str) -> None:
    with pytest.raises(ConvertError, match="windows"):
        convert({**cfg(), "os": "windows"}, rootfs)


def test_passwd_that_is_a_directory_is_ignored_with_a_warning(tmp_path: Path) -> None:
    """A layer may leave a directory at /etc/passwd: warned about and treated as absent
    (the unpack ended in "error: 6: is a directory"); numeric users still work."""
    (tmp_path / "etc/passwd").mkdir(parents=True)
    warnings: list[str] = []
    spec = convert(cfg(User="1000:1000"), str(tmp_path), warn=warnings.append)
    assert spec["process"]["user"] == {"uid": 1000, "gid": 1000}
    assert any("/etc/passwd" in w and "not a regular file" in w for w in warnings), warnings
    with pytest.raises(ConvertError):
        convert(cfg(User="app"), str(tmp_path))
