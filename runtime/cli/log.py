"""runc's log lines (logrus, as configured by runc's ``main.go``).

runc logs through logrus with the global flags ``--log FILE``,
``--log-format text|json`` and ``--debug``; ketch writes the same lines so
containerd (which reads ``--log <bundle>/log.json --log-format json`` and keeps
the last ``"level":"error"`` message) and people reading a terminal see what
they see with runc:

- json: ``{"level":"error","msg":"...","time":"2006-01-02T15:04:05Z07:00"}``
  (keys sorted, Go's JSON escaping), one line per entry;
- text to a non-terminal: ``time="..." level=error msg="..."`` (values quoted
  with ``strconv.Quote`` unless they are plain ``[A-Za-z0-9-._/@^+]``);
- text to a terminal: ``\\x1b[31mERRO\\x1b[0m[0000] message`` (padded to 44
  columns, colour by level).

The default level is ``info``; ``--debug`` enables ``debug`` and adds the
caller's ``func`` and ``file`` fields (logrus' ``ReportCaller``). ``--log``
opens FILE ``O_APPEND|O_SYNC`` (mode 0644) once; every line is one write.

Other runtime code logs through ``ketch.runtime.log`` (``warning``/``debug``);
``install_runtime_sink`` routes those lines here.
"""

from __future__ import annotations

import os
import sys
import time

from ketch.runtime.cli import gofmt

DEBUG, INFO, WARNING, ERROR = 5, 4, 3, 2
_LEVEL_NAMES = {DEBUG: "debug", INFO: "info", WARNING: "warning", ERROR: "error"}
_BY_NAME = {"debug": DEBUG, "info": INFO, "warning": WARNING, "warn": WARNING, "error": ERROR}
_COLORS = {DEBUG: 37, INFO: 36, WARNING: 33, ERROR: 31}
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._/@^+")
_BASE = time.monotonic()


class _Config:
    level: int = INFO
    json: bool = False
    report_caller: bool = False
    fd: int | None = None  # the --log file; None means stderr
    path: str | None = None


_cfg = _Config()


class LogConfigError(Exception):
    """``--log-format`` or ``--log`` was refused (message is runc's)."""


def configure(*, debug: bool = False, log_format: str = "text", log_file: str = "") -> None:
    """Apply the global flags, in runc's order: level, format, then open FILE.

    Raises ``LogConfigError`` with runc's message (``invalid log-format: X``,
    ``open FILE: no such file or directory``); what was set before stays set.
    """
    if debug:
        _cfg.level = DEBUG
        _cfg.report_caller = True
    if log_format == "json":
        _cfg.json = True
    elif log_format not in ("", "text"):
        raise LogConfigError("invalid log-format: " + log_format)
    if log_file:
        flags = os.O_CREAT | os.O_WRONLY | os.O_APPEND | os.O_SYNC | os.O_CLOEXEC
        try:
            fd = os.open(log_file, flags, 0o644)
        except OSError as e:
            raise LogConfigError(go_path_error("open", log_file, e)) from None
        if _cfg.fd is not None:
            os.close(_cfg.fd)
        _cfg.fd, _cfg.path = fd, log_file


def reset() -> None:
    """Back to the defaults (text, info, stderr); closes the log file. For tests."""
    if _cfg.fd is not None:
        os.close(_cfg.fd)
    _cfg.level, _cfg.json, _cfg.report_caller, _cfg.fd, _cfg.path = INFO, False, False, None, None


def to_stderr() -> bool:
    """True when lines go to stderr (no ``--log``): runc then does not repeat errors there."""
    return _cfg.fd is None


def enabled(level: int) -> bool:
    return level <= _cfg.level


def debug(msg: str, **fields: object) -> None:
    if _cfg.level >= DEBUG:
        _emit(DEBUG, msg, fields)


def info(msg: str, **fields: object) -> None:
    if _cfg.level >= INFO:
        _emit(INFO, msg, fields)


def warning(msg: str, **fields: object) -> None:
    if _cfg.level >= WARNING:
        _emit(WARNING, msg, fields)


def error(msg: str, **fields: object) -> None:
    _emit(ERROR, msg, fields)


def log(level: str, msg: str, **fields: object) -> None:
    """Log at a level given by name (``debug``, ``info``, ``warning``, ``error``)."""
    lvl = _BY_NAME.get(level, INFO)
    if lvl <= _cfg.level:
        _emit(lvl, msg, fields)


def _runtime_sink(level: str, message: str) -> None:
    log(level, message)


def install_runtime_sink() -> None:
    """Route ``ketch.runtime.log`` (the library's log calls) through these formats."""
    try:
        from ketch.runtime import log as runtime_log
    except ImportError:  # the library's log module is optional for the CLI
        return
    set_sink = getattr(runtime_log, "set_sink", None)
    if set_sink is not None:
        set_sink(_runtime_sink)


def _caller() -> tuple[str, str]:
    f = sys._getframe(2)
    skip = (__name__, "ketch.runtime.log")
    while f is not None and f.f_globals.get("__name__") in skip:
        f = f.f_back
    if f is None:
        return "", ""
    code = f.f_code
    func = f"{f.f_globals.get('__name__', '?')}.{getattr(code, 'co_qualname', code.co_name)}()"
    return func, f"{os.path.basename(code.co_filename)}:{f.f_lineno}"


def _emit(level: int, msg: str, fields: dict[str, object]) -> None:
    msg = str(msg)
    caller = _caller() if _cfg.report_caller else ("", "")
    fd = _cfg.fd
    terminal = _isatty(fd)
    if _cfg.json:
        line = format_json(level, msg, fields, caller)
    elif terminal:
        line = format_colored(level, msg, fields, caller)
    else:
        line = format_text(level, msg, fields, caller)
    _write(fd, line)


def _isatty(fd: int | None) -> bool:
    try:
        return os.isatty(fd) if fd is not None else sys.stderr.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _write(fd: int | None, line: str) -> None:
    if fd is None:
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        return
    data = line.encode("utf-8", "surrogateescape")
    try:
        while data:
            n = os.write(fd, data)
            data = data[n:]
    except OSError:
        pass


def format_json(level: int, msg: str, fields: dict[str, object],
                caller: tuple[str, str] = ("", ""), now: float | None = None) -> str:
    """logrus ``JSONFormatter``: one object, keys sorted, newline-terminated."""
    data: dict[str, object] = {}
    for k, v in fields.items():
        data["fields." + k if k in ("level", "msg", "time", "func", "file") else k] = _value(v)
    data["level"] = _LEVEL_NAMES[level]
    data["msg"] = msg
    data["time"] = gofmt.rfc3339_now(now)
    if caller[0]:
        data["func"], data["file"] = caller
    return gofmt.dumps({k: data[k] for k in sorted(data)}) + "\n"


def format_text(level: int, msg: str, fields: dict[str, object],
                caller: tuple[str, str] = ("", ""), now: float | None = None) -> str:
    """logrus ``TextFormatter`` without colours: ``time=... level=... msg=...``."""
    parts = ["time=" + _text_value(gofmt.rfc3339_now(now)), "level=" + _LEVEL_NAMES[level]]
    if msg:
        parts.append("msg=" + _text_value(msg))
    if caller[0]:
        parts.append("func=" + _text_value(caller[0]))
        parts.append("file=" + _text_value(caller[1]))
    for k in sorted(fields):
        parts.append(f"{k}={_text_value(str(_value(fields[k])))}")
    return " ".join(parts) + "\n"


def format_colored(level: int, msg: str, fields: dict[str, object],
                   caller: tuple[str, str] = ("", "")) -> str:
    """logrus ``TextFormatter`` on a terminal: ``ERRO[0000] msg`` with colours."""
    color = _COLORS[level]
    text = _LEVEL_NAMES[level].upper()[:4]
    elapsed = int(time.monotonic() - _BASE)
    where = f"{caller[1]} {caller[0]}" if caller[0] else ""
    if msg.endswith("\n"):
        msg = msg[:-1]
    line = f"\x1b[{color}m{text}\x1b[0m[{elapsed:04d}]{where} {msg:<44} "
    for k in sorted(fields):
        line += f" \x1b[{color}m{k}\x1b[0m={_text_value(str(_value(fields[k])))}"
    return line + "\n"


def _value(v: object) -> object:
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


def _text_value(s: str) -> str:
    if all(ch in _PLAIN for ch in s):
        return s
    return gofmt.quote(s)


def go_path_error(op: str, path: str, err: OSError) -> str:
    """Go's ``*PathError`` text: ``open /x: no such file or directory``."""
    return f"{op} {path}: {go_errno_text(err)}"


def go_errno_text(err: OSError) -> str:
    """Go's ``syscall.Errno`` text: the C library's message, first letter lowercased."""
    if err.errno is None:
        return str(err)
    text = os.strerror(err.errno)
    return text[:1].lower() + text[1:]
