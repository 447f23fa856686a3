"""Image references: ``[registry[:port]/]repository[:tag][@digest]``.

Implements the reference grammar used by the distribution-spec (``<name>``
components, tag and digest rules in spec.md "Pulling manifests") plus the de-facto
Docker normalisation: a first component with a ``.`` or ``:`` or equal to
``localhost`` names the registry, otherwise the registry is ``docker.io`` and
one-component names get ``library/``. Also parses the ``LAYOUT[:TAG]``
arguments of the CLI (image-spec image-layout.md ``org.opencontainers.image.ref.name``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ketch.image.errors import DigestError, ReferenceFormatError
from ketch.image.oci import validate_digest

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DEFAULT_TAG = "latest"

# distribution-spec: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
_COMPONENT_RE = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_HOST_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])"
    r"(?::[0-9]{1,5})?")
# image-layout ref.name: component ("/" component)*, component = alphanum (separator alphanum)*
_REFNAME_RE = re.compile(
    r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*")
_MAX_NAME = 255


@dataclass(frozen=True)
class Reference:
    """A parsed image reference.

    ``registry`` is the normalised registry (``docker.io`` for Docker Hub),
    ``repository`` the path (``library/busybox``), ``tag`` and ``digest`` are
    optional (at least one is set after :func:`parse_reference`).
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def api_host(self) -> str:
        """The host[:port] to talk to (Docker Hub's API lives on another host)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def host(self) -> str:
        """The registry host without port and brackets."""
        h = self.registry
        if h.startswith("["):
            return h[1:h.index("]")]
        return h.rsplit(":", 1)[0] if ":" in h else h

    @property
    def ref(self) -> str:
        """What to ask ``/v2/<name>/manifests/<ref>`` for: the digest if any, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def __str__(self) -> str:
        s = f"{self.registry}/{self.repository}"
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


def parse_reference(text: str) -> Reference:
    """Parse ``[docker://][registry[:port]/]repository[:tag][@digest]``.

    Returns a :class:`Reference` whose tag defaults to ``latest`` when neither a
    tag nor a digest is given. Raises :class:`ReferenceFormatError` for anything
    outside the grammar (uppercase repository, bad tag, bad digest, empty
    components, names over 255 characters).
    """
    original = text
    if text.startswith("docker://"):
        text = text[len("docker://"):]
    elif "://" in text and "/" not in text.partition("://")[0]:
        scheme = text.partition("://")[0]
        raise ReferenceFormatError(f"unknown transport {scheme!r} in {original!r} "
                                   "(a registry reference is [docker://]HOST/NAME[:TAG])")
    if not text:
        raise ReferenceFormatError("empty image reference")
    digest = None
    if "@" in text:
        text, _, digest = text.partition("@")
        try:
            validate_digest(digest)
        except DigestError as e:
            raise ReferenceFormatError(f"invalid reference {original!r}: {e}") from None
    tag = None
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        text, tag = text[:colon], text[colon + 1:]
        if not _TAG_RE.fullmatch(tag):
            raise ReferenceFormatError(f"invalid tag {tag!r} in reference {original!r}")
    first, sep, rest = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _HOST_RE.fullmatch(first):
            raise ReferenceFormatError(f"invalid registry {first!r} in reference {original!r}")
        port = first.rpartition(":")[2] if not first.endswith("]") else ""
        if port.isdigit() and ":" in first and not 0 < int(port) <= 65535:
            # the grammar allows any digits; no connection could be made to it
            raise ReferenceFormatError(f"invalid registry {first!r} in reference {original!r}: "
                                       f"port {port} out of range 1-65535")
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, text
    if registry == "index.docker.io":
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in path:
        path = "library/" + path
    components = path.split("/")
    if not path or not all(_COMPONENT_RE.fullmatch(c) for c in components):
        raise ReferenceFormatError(
            f"invalid repository name {path!r} in reference {original!r} "
            "(lowercase letters, digits and . _ __ - separators)")
    if len(registry) + 1 + len(path) > _MAX_NAME:
        raise ReferenceFormatError(f"repository name too long in {original!r}")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(registry=registry, repository=path, tag=tag, digest=digest)


def validate_ref_name(name: str) -> str:
    """Validate an image-layout ``org.opencontainers.image.ref.name`` value (a tag).

    Raises :class:`ReferenceFormatError` if ``name`` does not match the
    image-layout.md grammar ``component ("/" component)*``.
    """
    if not _REFNAME_RE.fullmatch(name or ""):
        raise ReferenceFormatError(f"invalid tag {name!r}")
    return name


def layout_path_arg(arg: str) -> str:
    """A CLI ``LAYOUT`` argument (a path, no tag), with skopeo's ``oci:`` prefix dropped
    unless ``oci`` is itself an existing layout."""
    if arg.startswith("oci:") and not _is_layout("oci"):
        return arg[len("oci:"):]
    return arg


def parse_layout_arg(arg: str, default_tag: str | None = DEFAULT_TAG) -> tuple[str, str | None]:
    """Split a CLI ``LAYOUT[:TAG]`` argument into ``(layout_path, tag)``.

    A tag may itself contain ``/`` and ``:`` (image-layout.md ``ref.name``), and a
    path may contain ``:``, so the filesystem decides:

    1. the split points (each ``:``) are tried left to right, and the first whose
       left part is an existing layout (has an ``oci-layout`` file) wins; then the
       whole argument, if it is an existing layout (its tag is ``default_tag``);
    2. otherwise (a layout that does not exist yet) the argument is split at the
       first ``:`` (skopeo's ``oci:PATH:TAG`` rule), except at a ``:`` that lies in
       the name of an existing directory (``/tmp/a:b/new`` with ``/tmp/a:b``
       present is the path ``/tmp/a:b/new``); with no usable ``:`` the whole
       argument is the path.

    ``default_tag`` is used when no tag is given (``LAYOUT:``, an empty tag, is an
    error). The tag is validated with
    :func:`validate_ref_name` (which refuses ``..``, leading ``/`` and empty
    components; tags are only ever index.json annotations, never paths). Raises
    :class:`ReferenceFormatError`.

    skopeo's ``oci:`` prefix is accepted and dropped (``oci:PATH[:TAG]``), unless
    ``oci`` is itself an existing layout.
    """
    arg = layout_path_arg(arg)
    colons = [i for i, c in enumerate(arg) if c == ":"]
    for i in colons:
        if arg[:i] and arg[i + 1:] and _is_layout(arg[:i]):
            return arg[:i], validate_ref_name(arg[i + 1:])
    if _is_layout(arg):
        return arg, default_tag
    path, tag = arg, ""
    for i in colons:
        slash = arg.find("/", i)
        if slash != -1 and os.path.isdir(arg[:slash]):
            continue  # this ":" is part of an existing directory's name
        path, tag = arg[:i], arg[i + 1:]
        break
    if not path:
        raise ReferenceFormatError(f"invalid layout argument {arg!r}: no layout path")
    if not tag and path != arg:
        # "LAYOUT:" names no tag: reading "latest" there would let a repack overwrite it
        raise ReferenceFormatError(f"invalid layout argument {arg!r}: empty tag after ':'")
    if not tag:
        return path, default_tag
    return path, validate_ref_name(tag)


def _is_layout(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "oci-layout"))
