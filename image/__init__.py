"""``ketch.image``: the image side of Ketch (``ketch-image``).

OCI image layouts (image-spec image-layout.md), pulling from registries
(distribution-spec), importing a root filesystem as an image, and unpacking an
image into a runtime bundle (image-spec layer.md and conversion.md). Entry
point: :mod:`ketch.image.startup` (the CLI itself is :mod:`ketch.image.cli`).
Importing the package imports nothing heavy; ``requests`` is loaded only by the
commands that talk to a registry.
"""
