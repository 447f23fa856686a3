"""Help screens in urfave/cli v1's layout (runc's ``--help``, ``help CMD`` and
the text printed after ``Incorrect Usage``).

Layout follows urfave's ``AppHelpTemplate`` / ``CommandHelpTemplate`` passed
through Go's ``tabwriter`` (min width 1, padding 2): flag lines read
``--bundle value, -b value  usage (default: ...)``. The wording of the
descriptions is ketch's own. Only imported when a help screen is printed.
"""

from __future__ import annotations

from ketch.runtime.cli import gofmt
from ketch.runtime.cli.flags import BOOL, DURATION, INT, STRING, Flag, format_duration

APP_USAGE = """Open Container Initiative runtime

ketch is a command line client for running applications packaged according to
the Open Container Initiative (OCI) format; it follows the OCI runtime
specification and runc's command line, so it can stand in for runc under
containerd, CRI-O or podman.

A bundle is a directory holding a specification file named "config.json" and
a root filesystem (by default the "rootfs" directory next to it).

To create and run a container from the bundle in the current directory:

    # ketch run [ -b bundle ] <container-id>

"<container-id>" names this instance of the container and must be unique
under the state root (see --root). "-b" is optional; the bundle defaults to the
current directory."""

_CONTAINER_ID = """<container-id>

Where "<container-id>" is your name for the instance of the container that you
are starting. The name you provide for the container instance must be unique on
your host."""

_BUNDLE_DESCRIPTION = """creates an instance of a container for a bundle. The bundle
is a directory with a specification file named "config.json" and a root
filesystem.

The args of the specification's "process" are what the container runs once it
is started; edit them (see "ketch spec --help") to run something else."""

# name -> (usage line, args usage, description)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "create": (
        "create a container",
        _CONTAINER_ID,
        "The create command " + _BUNDLE_DESCRIPTION + "\n\nThe container's process waits"
        ' until "ketch start <container-id>" is run.',
    ),
    "exec": (
        "execute new process inside the container",
        "<container-id> <command> [command options]  || -p process.json <container-id>"
        '\n\nWhere "<container-id>" is the name of the container and "<command>" the program'
        '\nto start in it, with its arguments; "<command>" may be left out only when "-p"'
        "\ngives the whole process as JSON. Flags for ketch exec go before the container id."
        "\n\nEXAMPLE:\nTo list the processes of a running container:\n\n       # ketch exec <container-id> ps",
        "",
    ),
    "events": ("display container events such as OOM notifications, cpu, memory, and IO"
               " usage statistics",
               '<container-id>\n\nWhere "<container-id>" is the name for the instance of the'
               " container.",
               "The events command displays information about the container. By default the"
               "\ninformation is displayed once every 5 seconds."),
    "update": ("update container resource constraints", "<container-id>",
               "The accepted format of --resources is a runtime-spec LinuxResources JSON object;"
               "\nunchanged values can be omitted. When it is given, all other options are"
               " ignored."),
    "features": ("show the enabled features", "", "Show the features this build of ketch supports."),
    "pause": ("pause suspends all processes inside the container", "<container-id>",
              "Where \"<container-id>\" is the name for the instance of the container to be paused."),
    "resume": ("resumes all processes that have been previously paused", "<container-id>",
               "Where \"<container-id>\" is the name for the instance of the container to be resumed."),
    "ps": ("ps displays the processes running inside a container",
           "<container-id> [ps options]", ""),
    "delete": (
        "delete any resources held by the container often used with detached container",
        '<container-id>\n\nWhere "<container-id>" is the name for the instance of the container.'
        '\n\nEXAMPLE:\nFor example, if the container id is "ubuntu01" and ketch list currently'
        ' shows the\nstatus of "ubuntu01" as "stopped" the following will delete resources held'
        ' for\n"ubuntu01" removing "ubuntu01" from the ketch list of containers:\n\n'
        "       # ketch delete ubuntu01",
        "",
    ),
    "kill": (
        "kill sends the specified signal (default: SIGTERM) to the container's init process",
        '<container-id> [signal]\n\nWhere "<container-id>" is the name for the instance of the'
        ' container and\n"[signal]" is the signal to be sent to the init process: a number or'
        ' a name\nwith or without "SIG", in any case.\n\nEXAMPLE:\nFor example, if the container'
        ' id is "ubuntu01" the following will send a "KILL"\nsignal to the init process of the'
        ' "ubuntu01" container:\n\n       # ketch kill ubuntu01 KILL',
        "",
    ),
    "list": (
        "lists containers started by ketch with the given root",
        '\n\nWhere the given root is specified via the global option "--root"\n'
        '(default: "/run/ketch").\n\nEXAMPLE 1:\nTo list containers created via the default'
        ' "--root":\n       # ketch list\n\nEXAMPLE 2:\nTo list containers created using a'
        ' non-default value for "--root":\n       # ketch --root value list',
        "",
    ),
    "run": (
        "create and run a container",
        _CONTAINER_ID,
        "The run command " + _BUNDLE_DESCRIPTION + "\n\nWithout --detach, ketch waits for"
        " the container's process and exits with its\nexit status, then deletes the"
        " container unless --keep is given.",
    ),
    "spec": (
        "create a new specification file",
        "",
        'The spec command writes a starter specification file named "config.json" into\n'
        "the bundle directory (the current directory unless --bundle is given). It\n"
        "refuses to overwrite an existing config.json.\n\n"
        'The starter spec runs "sh" in the container: edit "process.args" to run\n'
        "something else, for example:\n\n"
        "    mkdir -p hello/rootfs && cd hello\n"
        "    tar -C rootfs -xf hello-world.tar\n"
        "    ketch spec\n"
        "    sed -i 's;\"sh\";\"/hello\";' config.json\n"
        "    ketch run container1\n\n"
        "With --rootless the spec suits a container started by an unprivileged user:\n"
        "a user namespace maps the caller's uid and gid to root, the network\n"
        "namespace and cgroup resources are dropped and /sys is bind mounted.\n",
    ),
    "start": (
        "executes the user defined process in a created container",
        _CONTAINER_ID,
        "The start command executes the user defined process in a created container.",
    ),
    "state": (
        "output the state of a container",
        '<container-id>\n\nWhere "<container-id>" is your name for the instance of the container.',
        "The state command outputs current state information for the\ninstance of a container.",
    ),
}
HELP_COMMAND = ("help, h", "Shows a list of commands or help for one command")


def flag_line(flag: Flag) -> str:
    """urfave's ``FlagStringer``: ``--name value, -n value<TAB>usage (default: x)``."""
    placeholder = "" if flag.kind == BOOL else " value"
    names = ", ".join(("-" if len(n) == 1 else "--") + n + placeholder for n in flag.names)
    default = ""
    if flag.kind == STRING and flag.default:
        default = " (default: " + gofmt.quote(str(flag.default)) + ")"
    elif flag.kind == INT:
        default = f" (default: {flag.default})"
    elif flag.kind == DURATION:
        default = f" (default: {format_duration(float(flag.default))})"  # type: ignore[arg-type]
    return names + "\t" + (flag.usage + default).strip()


def tabwrite(text: str, padding: int = 2, minwidth: int = 1) -> str:
    """Go ``tabwriter`` with spaces: align tab-separated cells of consecutive
    lines (a line without a tab ends the block); the last cell is not padded."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if "\t" not in lines[i]:
            out.append(lines[i])
            i += 1
            continue
        j = i
        while j < len(lines) and "\t" in lines[j]:
            j += 1
        out.extend(_align([ln.split("\t") for ln in lines[i:j]], padding, minwidth))
        i = j
    return "\n".join(out)


def _align(rows: list[list[str]], padding: int, minwidth: int) -> list[str]:
    ncols = max(len(r) for r in rows) - 1
    widths = []
    for c in range(ncols):
        cells = [len(r[c]) + padding for r in rows if c < len(r) - 1]
        widths.append(max([minwidth, *cells]))
    return ["".join(cell.ljust(widths[c]) if c < len(r) - 1 else cell
                    for c, cell in enumerate(r)) for r in rows]


def command_help(prog: str, name: str, flags: list[Flag]) -> str:
    """The command's help screen (urfave ``CommandHelpTemplate``)."""
    usage, args_usage, description = COMMANDS[name]
    visible = [f for f in flags if not f.hidden]
    help_name = f"{prog} {name}"
    text = (f"NAME:\n   {help_name} - {usage}\n\nUSAGE:\n   {help_name}"
            + (" [command options]" if visible else "")
            + " " + (args_usage or "[arguments...]"))
    if description:
        text += "\n\nDESCRIPTION:\n   " + description
    if visible:
        text += "\n\nOPTIONS:\n   " + "".join(flag_line(f) + "\n   " for f in visible)
    return tabwrite(text + "\n")


def app_help(prog: str, version: str, commands: list[str], flags: list[Flag]) -> str:
    """The application's help screen (urfave ``AppHelpTemplate``)."""
    text = (f"NAME:\n   {prog} - {APP_USAGE}\n\nUSAGE:\n   {prog} [global options] command"
            f" [command options] [arguments...]\n\nVERSION:\n   {version}\n\nCOMMANDS:")
    for name in commands:
        text += f"\n   {name}\t{COMMANDS[name][0]}"
    text += f"\n   {HELP_COMMAND[0]}\t{HELP_COMMAND[1]}"
    text += "\n\nGLOBAL OPTIONS:\n   " + "\n   ".join(flag_line(f) for f in flags if not f.hidden)
    return tabwrite(text + "\n")
