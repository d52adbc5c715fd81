"""The process-wide registry of secrets and the one function that hides them: ``<redacted:NAME>``.

The harness registers every API key, token and private-key PEM it creates or
reads (through ``fixtures.secrets``, which re-exports this module's
:data:`REDACTOR`); the reports scrub every string they emit with the same
registry. It lives here, not in the harness, so that ``reports/`` depends on
nothing of the harness.
"""

from __future__ import annotations

import threading


class Redactor:
    """A registry of secret strings and their display names."""

    def __init__(self) -> None:
        self._secrets: dict[str, str] = {}
        self._ordered: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def register(self, name: str, secret: str | bytes | None) -> None:
        """Remember ``secret`` (ignored when empty: an empty string is not a secret)."""
        if secret is None:
            return
        text = secret.decode("utf-8", "replace") if isinstance(secret, bytes) else secret
        if not text:
            return
        with self._lock:
            self._secrets[text] = name
            # PEM bodies are also matched line by line, so a partial dump is caught.
            if "-----BEGIN" in text:
                for line in text.splitlines():
                    line = line.strip()
                    if len(line) >= 16 and not line.startswith("-----"):
                        self._secrets[line] = name
            # Longest first, so a secret containing another is replaced whole.
            self._ordered = sorted(self._secrets.items(), key=lambda kv: -len(kv[0]))

    def redact(self, text: str) -> str:
        for secret, name in self._ordered:
            if secret in text:
                text = text.replace(secret, f"<redacted:{name}>")
        return text

    def named(self) -> dict[str, str]:
        """Secret → display name (for self-tests that look for one kind of secret)."""
        with self._lock:
            return dict(self._secrets)

    def secrets(self) -> list[str]:
        """The registered secret strings (for self-tests that grep output)."""
        with self._lock:
            return list(self._secrets)


#: The process-wide redactor. The harness registers every secret it creates.
REDACTOR = Redactor()
