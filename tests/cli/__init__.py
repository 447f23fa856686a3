"""Tests of ``ketch.runtime.cli``: runc's command line, log formats and verbs."""
