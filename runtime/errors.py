"""The runtime's exception hierarchy.

Every error the runtime raises on purpose is a ``KetchError``; the CLI turns it
into runc's one-line message (text or ``--log-format json``) and exit status 1.
Where runc's message text is matched by callers (containerd matches
``does not exist`` and ``not running``), the text is runc's.
"""

from __future__ import annotations


class KetchError(Exception):
    """Base of every error the runtime reports to its caller."""

    exit_code = 1


class ConfigError(KetchError):
    """config.json is invalid; ``field`` is the dotted path of the offender.

    ``str(err)`` is ``"<field>: <message>"``, e.g.
    ``process.args: must be a non-empty array``.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


class InvalidIDError(KetchError):
    """A container ID that runc would refuse (runtime-spec: unique, no path tricks)."""


class ContainerNotExistError(KetchError):
    """No container with that ID under ``--root`` (runc: ``container does not exist``)."""

    def __init__(self, container_id: str = "") -> None:
        super().__init__("container does not exist")
        self.container_id = container_id


class ContainerExistsError(KetchError):
    """``create`` with an ID that is already in use (runc's text, which callers match)."""

    def __init__(self, container_id: str) -> None:
        super().__init__("container with given ID already exists")
        self.container_id = container_id


class InvalidStateError(KetchError):
    """The operation is not allowed in the container's current status."""


class ContainerNotRunningError(InvalidStateError):
    """kill of a stopped container (runc: ``container not running``)."""

    def __init__(self) -> None:
        super().__init__("container not running")


class ProcessError(KetchError):
    """The container's init failed while being set up; ``str`` is the init's message."""


class UsageError(KetchError):
    """Bad command line (runc prints the message and exits 1)."""
