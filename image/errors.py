"""The one error hierarchy of ``ketch.image``.

Every failure the image tool reports to a user is an :class:`ImageError`; the
CLI prints ``ketch-image: error: <message>`` and exits 1. Subclasses exist so
callers (and tests) can tell the kinds apart without parsing messages.
"""

from __future__ import annotations


class ImageError(Exception):
    """Base class of every error ``ketch.image`` raises on purpose."""


class ReferenceFormatError(ImageError):
    """An image reference, tag or ``LAYOUT:TAG`` argument is malformed."""


class DigestError(ImageError):
    """A digest string is malformed, or content does not match its digest/size."""


class LayoutError(ImageError):
    """An OCI image layout is missing, malformed, or lacks a referenced blob or tag."""


class ManifestError(ImageError):
    """A manifest, index or config document is malformed or unsupported."""


class PlatformError(ImageError):
    """No manifest in an index matches the requested platform."""


class RegistryError(ImageError):
    """A registry (or token server) request failed or answered unexpectedly."""


class TransferInterrupted(RegistryError):
    """A download broke off mid-stream (a retry may succeed)."""


class RegistryUnreachable(RegistryError):
    """No connection to a registry (refused, reset, timed out, unknown host) after the
    retries; the message is one short line naming the host and the reason."""


class BlobUnknown(RegistryError):
    """The registry does not have a blob (404)."""


class AuthError(RegistryError):
    """Authentication with a registry or token server failed."""


class LayerError(ImageError):
    """A layer cannot be applied: hostile or invalid entries, unsupported format."""


class ConvertError(ImageError):
    """The image config cannot be converted to a runtime config.json."""


class BundleError(ImageError):
    """The bundle directory cannot be used (exists and is not empty, ...)."""


class PathNotFound(LayerError):
    """An in-root path (or one of its parent directories) does not exist."""
