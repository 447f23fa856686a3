import pytest

from ketch.image.errors import ReferenceFormatError
from ketch.image.reference import Reference, parse_layout_arg, parse_reference


@pytest.mark.parametrize("text,expected", [
    ("busybox", Reference("docker.io", "library/busybox", "latest")),
    ("busybox:1.36", Reference("docker.io", "library/busybox", "1.36")),
    ("user/app", Reference("docker.io", "user/app", "latest")),
    ("docker.io/busybox", Reference("docker.io", "library/busybox", "latest")),
    ("index.docker.io/library/busybox:x", Reference("docker.io", "library/busybox", "x")),
    ("127.0.0.1:5000/a/b:v1", Reference("127.0.0.1:5000", "a/b", "v1")),
    ("localhost/app", Reference("localhost", "app", "latest")),
    ("localhost:5000/app", Reference("localhost:5000", "app", "latest")),
    ("quay.io/org/app_x.y-z__w:V_1.2-3", Reference("quay.io", "org/app_x.y-z__w", "V_1.2-3")),
    ("[::1]:5000/app:t", Reference("[::1]:5000", "app", "t")),
    ("docker://registry.example/app:t", Reference("registry.example", "app", "t")),
    ("reg.example/app@sha256:" + "a" * 64,
     Reference("reg.example", "app", None, "sha256:" + "a" * 64)),
    ("reg.example/app:t@sha256:" + "b" * 64,
     Reference("reg.example", "app", "t", "sha256:" + "b" * 64)),
])
def test_parse_reference(text: str, expected: Reference) -> None:
    assert parse_reference(text) == expected


def test_reference_helpers() -> None:
    r = parse_reference("busybox")
    assert r.api_host == "registry-1.docker.io"
    assert r.ref == "latest"
    assert str(r) == "docker.io/library/busybox:latest"
    r = parse_reference("127.0.0.1:5000/x@sha256:" + "c" * 64)
    assert r.ref == "sha256:" + "c" * 64 and r.host == "127.0.0.1" and r.api_host == "127.0.0.1:5000"
    assert parse_reference("[::1]:5000/a").host == "::1"


@pytest.mark.parametrize("text", [
    "", "Busybox", "app:", "app:-bad", "app:" + "x" * 129, "reg.example/", "reg.example//x",
    "a/b-/c", "app@sha256:abc", "app@sha256:" + "A" * 64, "app@md5:" + "a" * 32,
    "reg_ex.ample/app", "a" * 256,
])
def test_parse_reference_rejects(text: str) -> None:
    with pytest.raises(ReferenceFormatError):
        parse_reference(text)


@pytest.mark.parametrize("arg,expected", [
    ("layout", ("layout", "latest")),
    ("layout:v1", ("layout", "v1")),
    ("/tmp/a:b/layout", ("/tmp/a:b/layout", "latest")),
    ("/tmp/a:b/layout:tag", ("/tmp/a:b/layout", "tag")),
    ("./l:1.0-rc.1", ("./l", "1.0-rc.1")),
])
def test_parse_layout_arg(arg: str, expected: tuple[str, str]) -> None:
    assert parse_layout_arg(arg) == expected


@pytest.mark.parametrize("arg", ["l:bad tag", "l:-x", ":tag", "l:a..b"])
def test_parse_layout_arg_rejects(arg: str) -> None:
    with pytest.raises(ReferenceFormatError):
        parse_layout_arg(arg)
