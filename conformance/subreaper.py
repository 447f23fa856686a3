#!/usr/bin/env python3
"""subreaper.py CMD [ARG...]: run CMD as the child of a child subreaper.

Containers a runtime leaves detached are re-parented to this process instead of
the host's PID 1 (which may reap adopted zombies late), so a killed container
disappears from /proc at once. SIGTERM, SIGINT and SIGHUP are passed on to CMD;
the exit status is CMD's (128+N if it died of signal N).
"""

import contextlib
import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print(f"subreaper: prctl: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        return 2
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(sys.argv[1], sys.argv[1:])
        except OSError as e:
            print(f"subreaper: {sys.argv[1]}: {e.strerror}", file=sys.stderr)
        os._exit(127)

    def relay(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, relay)
    code = 1
    while True:  # reap everything until CMD itself exits
        try:
            reaped, status = os.wait()
        except ChildProcessError:
            break
        if reaped == pid:
            code = os.waitstatus_to_exitcode(status)
            break
    while True:  # and whatever else has already exited
        try:
            reaped, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if reaped == 0:
            break
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
