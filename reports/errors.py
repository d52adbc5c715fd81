"""The one exception the reports package raises for input it cannot use."""

from __future__ import annotations


class ReportInputError(ValueError):
    """Bad input to a report: a baseline file, a results file, a malformed record.

    The message is a single line meant to follow ``qsc: error:`` verbatim, so
    callers can print it without a traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
