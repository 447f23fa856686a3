"""Platforms: the host's platform in Go names and matching index entries.

Implements the ``platform`` object of image-spec image-index.md (``os``,
``architecture``, ``variant``; values from the Go ``GOOS``/``GOARCH`` lists) and
config.md ``architecture``/``os``/``variant``. Matching normalises both sides
(``x86_64`` -> ``amd64``, ``aarch64`` -> ``arm64`` with ``v8`` as the default
variant, ``arm`` defaults to ``v7``), prefers the exact variant, and otherwise
takes the newest variant the requested one can run.
"""

from __future__ import annotations

import platform as _platform
from dataclasses import dataclass

from ketch.image.errors import PlatformError

_ARCH_ALIASES = {
    "x86_64": "amd64", "x86-64": "amd64", "amd64": "amd64",
    "aarch64": "arm64", "arm64": "arm64",
    "i386": "386", "i486": "386", "i586": "386", "i686": "386", "386": "386",
    "armhf": "arm", "armel": "arm", "arm": "arm",
    "ppc64le": "ppc64le", "ppc64": "ppc64", "s390x": "s390x",
    "riscv64": "riscv64", "mips64": "mips64le", "mips64el": "mips64le",
    "loongarch64": "loong64", "loong64": "loong64",
}
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}


@dataclass(frozen=True)
class Platform:
    """An ``os/architecture[/variant]`` triple in Go names."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        s = f"{self.os}/{self.architecture}"
        return f"{s}/{self.variant}" if self.variant else s

    def normalized(self) -> Platform:
        arch = _ARCH_ALIASES.get(self.architecture.lower(), self.architecture.lower())
        variant = self.variant.lower()
        if self.architecture in ("armhf",) and not variant:
            variant = "v7"
        elif self.architecture in ("armel",) and not variant:
            variant = "v6"
        if variant and not variant.startswith("v") and variant.isdigit():
            variant = "v" + variant
        if not variant:
            variant = _DEFAULT_VARIANT.get(arch, "")
        if arch == "amd64" and variant == "v1":
            variant = ""
        return Platform(self.os.lower(), arch, variant)


def host_platform() -> Platform:
    """The platform of this machine (``linux/amd64``, ``linux/arm64``, ``linux/arm/v7``...)."""
    machine = _platform.machine().lower()
    if machine.startswith("armv"):
        digits = "".join(ch for ch in machine[4:] if ch.isdigit())
        return Platform("linux", "arm", "v" + digits if digits else "")
    arch = _ARCH_ALIASES.get(machine, machine)
    return Platform("linux", arch, "")


def parse_platform(text: str) -> Platform:
    """Parse ``os/arch[/variant]`` (e.g. ``linux/arm64``, ``linux/arm/v7``).

    Raises :class:`PlatformError` for a string with fewer than two or more than
    three non-empty parts.
    """
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise PlatformError(f"invalid platform {text!r} (want os/arch[/variant])")
    return Platform(*parts)


def _variant_rank(v: str) -> int:
    return int(v[1:]) if v.startswith("v") and v[1:].isdigit() else -1


def select_manifest(manifests: list[dict], want: Platform) -> dict:
    """Pick the descriptor from an index's ``manifests`` that best matches ``want``.

    Entries without ``platform`` are skipped. Exact (normalised) matches win;
    otherwise the highest numeric variant not newer than the wanted one.
    Raises :class:`PlatformError` listing the available platforms if none fits.
    """
    target = want.normalized()
    best: tuple[int, dict] | None = None
    available: list[str] = []
    for desc in manifests:
        p = desc.get("platform")
        if not isinstance(p, dict):
            continue
        try:
            cand = Platform(str(p.get("os", "")), str(p.get("architecture", "")),
                            str(p.get("variant", "") or "")).normalized()
        except (TypeError, ValueError):
            continue
        available.append(str(cand))
        if cand.os != target.os or cand.architecture != target.architecture:
            continue
        if cand.variant == target.variant:
            score = 1000
        else:
            have, need = _variant_rank(cand.variant), _variant_rank(target.variant)
            if have < 0 or need < 0 or have > need:
                continue
            score = have
        if best is None or score > best[0]:
            best = (score, desc)
    if best is None:
        listed = ", ".join(sorted(set(available))) or "none"
        raise PlatformError(
            f"no matching manifest for {want} in the manifest list entries (available: {listed})")
    return best[1]
