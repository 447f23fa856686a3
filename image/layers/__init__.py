"""Layer changesets (image-spec layer.md): applying them to a root filesystem and
writing reproducible ones. See :mod:`.apply`, :mod:`.archive`, :mod:`.compression`."""
