import os

import pytest

from ketch.image.errors import ReferenceFormatError
from ketch.image.reference import Reference, layout_path_arg, parse_layout_arg, parse_reference


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
    "reg_ex.ample/app", "a" * 256, "localhost:99999/x", "reg.example:0/x",
    "https://reg.example/x", "bogus://x",
])
def test_parse_reference_rejects(text: str) -> None:
    with pytest.raises(ReferenceFormatError):
        parse_reference(text)


@pytest.mark.parametrize("arg,expected", [
    ("layout", ("layout", "latest")),
    ("layout:v1", ("layout", "v1")),
    ("./l:1.0-rc.1", ("./l", "1.0-rc.1")),
    # nothing exists: skopeo's rule, split at the first colon
    ("new:we/ird", ("new", "we/ird")),
    ("new:a:b", ("new", "a:b")),
])
def test_parse_layout_arg(arg: str, expected: tuple[str, str]) -> None:
    assert parse_layout_arg(arg) == expected


def test_parse_layout_arg_uses_the_filesystem(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for layout in ("tl", "x:y/inner", "a", "a:b"):
        os.makedirs(layout)
        with open(os.path.join(layout, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion": "1.0.0"}')
    os.makedirs("dir:with/colon")
    assert parse_layout_arg("tl:a:b") == ("tl", "a:b")
    assert parse_layout_arg("tl:ta/g") == ("tl", "ta/g")
    assert parse_layout_arg("tl") == ("tl", "latest")
    assert parse_layout_arg("x:y/inner") == ("x:y/inner", "latest")
    assert parse_layout_arg("x:y/inner:t:1") == ("x:y/inner", "t:1")
    assert parse_layout_arg("a:b") == ("a", "b")  # split points first, left to right
    # a new layout under a directory whose name has a colon
    assert parse_layout_arg("dir:with/colon/new:v1") == ("dir:with/colon/new", "v1")
    assert parse_layout_arg("dir:with/colon/new") == ("dir:with/colon/new", "latest")
    with pytest.raises(ReferenceFormatError):
        parse_layout_arg("tl:../escape")
    # skopeo's oci: prefix, typed by habit (it read as the layout "oci")
    assert parse_layout_arg("oci:tl:a:b") == ("tl", "a:b")
    assert parse_layout_arg("oci:/abs/new:v1") == ("/abs/new", "v1")
    os.makedirs("oci")
    with open("oci/oci-layout", "w") as f:
        f.write('{"imageLayoutVersion": "1.0.0"}')
    assert parse_layout_arg("oci:v2") == ("oci", "v2")  # unless "oci" is a layout
    assert layout_path_arg("oci:tl") == "oci:tl"
    os.remove("oci/oci-layout")
    assert layout_path_arg("oci:tl") == "tl" and layout_path_arg("tl") == "tl"


@pytest.mark.parametrize("arg", ["l:bad tag", "l:-x", ":tag", "l:a..b", "l:a/../b", "l:/abs",
                                 "l:a//b", "l:a/"])
def test_parse_layout_arg_rejects(arg: str) -> None:
    with pytest.raises(ReferenceFormatError):
        parse_layout_arg(arg)
