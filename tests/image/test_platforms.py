import pytest

from ketch.image.errors import PlatformError
from ketch.image.platforms import Platform, host_platform, parse_platform, select_manifest


def _d(name: str, os_: str, arch: str, variant: str | None = None) -> dict:
    p = {"os": os_, "architecture": arch}
    if variant:
        p["variant"] = variant
    return {"digest": name, "platform": p}


INDEX = [_d("amd64", "linux", "amd64"), _d("arm64", "linux", "arm64", "v8"),
         _d("armv6", "linux", "arm", "v6"), _d("armv7", "linux", "arm", "v7"),
         _d("win", "windows", "amd64"), {"digest": "noplatform"}]


@pytest.mark.parametrize("want,chosen", [
    ("linux/amd64", "amd64"), ("linux/x86_64", "amd64"), ("linux/arm64", "arm64"),
    ("linux/aarch64", "arm64"), ("linux/arm64/v8", "arm64"), ("linux/arm/v7", "armv7"),
    ("linux/arm", "armv7"), ("linux/arm/v6", "armv6"), ("linux/arm/v8", "armv7"),
    ("windows/amd64", "win"),
])
def test_select_manifest(want: str, chosen: str) -> None:
    assert select_manifest(INDEX, parse_platform(want))["digest"] == chosen


def test_select_manifest_no_match_lists_platforms() -> None:
    with pytest.raises(PlatformError, match=r"linux/s390x.*available: .*linux/amd64"):
        select_manifest(INDEX, parse_platform("linux/s390x"))
    with pytest.raises(PlatformError):
        select_manifest([_d("v7", "linux", "arm", "v7")], parse_platform("linux/arm/v5"))


def test_host_platform_uses_go_names() -> None:
    p = host_platform()
    assert p.os == "linux"
    assert p.architecture in {"amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64",
                              "mips64le", "loong64"}


@pytest.mark.parametrize("text", ["linux", "linux/", "/amd64", "a/b/c/d"])
def test_parse_platform_rejects(text: str) -> None:
    with pytest.raises(PlatformError):
        parse_platform(text)


def test_platform_str() -> None:
    assert str(Platform("linux", "arm", "v7")) == "linux/arm/v7"
