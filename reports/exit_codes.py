"""The process exit codes of a conformance run and of ``python -m reports.compare``: one table.

CI gates read these numbers, so they never change meaning. 2 and 4 are the
codes pytest itself gives an interrupted run and a usage error (the plugin
raises ``pytest.UsageError`` for bad input), so a run that stops before the
plugin decides still exits with a code from this table.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    #: Every verdict the gate selects holds.
    GATE_HOLDS = 0
    #: A gated verdict fails: a finding about the target.
    NOT_CONFORMANT = 1
    #: Ctrl-C or SIGTERM before the run could finish.
    INTERRUPTED = 2
    #: The run could not tell: a gated verdict incomplete or inconclusive, a harness error, nothing ran,
    #: the target never started. Never a finding about the target.
    INCOMPLETE = 3
    #: Bad input (usage, unreachable target, no Docker engine, missing image, unreadable file), printed as
    #: one ``qsc: error: ...`` line before anything runs.
    BAD_INPUT = 4
