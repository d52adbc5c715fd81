"""Which Qdrant behaviours the emulated version has (spec §9).

Every version-dependent branch in the server asks one of these predicates, so
the list of switches is in one place and matches the spec's history table.
"""

from __future__ import annotations

from dataclasses import dataclass


def parse_version(text: str) -> tuple[int, int, int]:
    """``"1.19.0"`` / ``"v1.9"`` → ``(1, 19, 0)``; raises ``ValueError`` otherwise."""
    core = text.strip().lstrip("v").split("-", 1)[0].split("+", 1)[0]
    parts = core.split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a version: {text!r}")
    nums = [int(p) for p in parts] + [0] * (3 - len(parts))
    return nums[0], nums[1], nums[2]


@dataclass(frozen=True)
class Emulation:
    """Feature switches of one emulated Qdrant version."""

    version: tuple[int, int, int]

    @classmethod
    def of(cls, text: str) -> Emulation:
        return cls(parse_version(text))

    def at_least(self, text: str) -> bool:
        return self.version >= parse_version(text)

    @property
    def unauthenticated_is_401(self) -> bool:
        """401 for missing/invalid credentials; 403 before v1.9.0 (spec §9)."""
        return self.at_least("1.9.0")

    @property
    def has_read_only_key(self) -> bool:
        return self.at_least("1.7.0")

    @property
    def has_bearer(self) -> bool:
        return self.at_least("1.7.0")

    @property
    def has_alt_key(self) -> bool:
        return self.at_least("1.17.0")

    @property
    def grpc_health_whitelisted(self) -> bool:
        return self.at_least("1.15.1")

    @property
    def route_based_whitelist(self) -> bool:
        """Whitelist on the matched route (v1.18.2+); raw-path prefix before."""
        return self.at_least("1.18.2")

    @property
    def has_web_ui(self) -> bool:
        """The Web UI at ``/dashboard`` and its whitelist entry, when static content exists (v1.3.0, spec §9)."""
        return self.at_least("1.3.0")

    @property
    def web_ui_frame_deny(self) -> bool:
        """``X-Frame-Options: DENY`` on the Web UI's responses (v1.9.7, spec §9)."""
        return self.at_least("1.9.7")

    @property
    def empty_key_is_unset(self) -> bool:
        return self.at_least("1.19.0")

    @property
    def has_health_endpoints(self) -> bool:
        return self.at_least("1.5.0")

    @property
    def root_whitelisted(self) -> bool:
        return self.at_least("1.4.1")
