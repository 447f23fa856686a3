"""One module per ``ketch`` verb; each exposes ``run(ctx) -> int``.

A verb only turns the parsed options into calls on the library
(``ketch.runtime.container`` via ``ketch.runtime.cli.backend``) and prints
runc's output; errors propagate to ``ketch.runtime.cli.app`` which reports
them in runc's format.
"""
