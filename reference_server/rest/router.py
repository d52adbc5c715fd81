"""Match a normalised path against the route table, the way actix does.

Two questions are answered separately, as in actix: which *pattern* a path
matches, whatever the method (the auth whitelist asks this, spec §2.5), and
which *route* serves the method (routing; none → 404).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from ..versioning import Emulation
from .routes import Route


@dataclass(frozen=True)
class Match:
    route: Route
    params: dict[str, str]


def _segments(path: str) -> list[str]:
    return path.strip("/").split("/") if path != "/" else []


class Router:
    """Routes of one emulated version, most specific pattern first."""

    def __init__(self, routes: Iterable[Route], emulation: Emulation) -> None:
        usable = [r for r in routes if r.since is None or emulation.at_least(r.since)]
        # Static segments beat parameters (``/collections/aliases`` before
        # ``/collections/{collection_name}``), so sort by where the first
        # parameter sits, latest first.
        self._routes = sorted(usable, key=_specificity, reverse=True)
        self._compiled = [(r, _segments(r.path)) for r in self._routes]

    @property
    def routes(self) -> list[Route]:
        return list(self._routes)

    def _candidates(self, path: str) -> Iterable[tuple[Route, dict[str, str]]]:
        parts = _segments(path)
        for route, pattern in self._compiled:
            params = _bind(pattern, parts)
            if params is not None:
                yield route, params

    def match_pattern(self, path: str) -> str | None:
        """The pattern the path matches for any method (actix ``match_pattern``)."""
        for route, _ in self._candidates(path):
            return route.path
        return None

    def resolve(self, method: str, path: str) -> Match | None:
        for route, params in self._candidates(path):
            if route.method == method:
                return Match(route, params)
        return None


def _specificity(route: Route) -> tuple[int, ...]:
    return tuple(0 if seg.startswith("{") else 1 for seg in _segments(route.path))


def _bind(pattern: list[str], parts: list[str]) -> dict[str, str] | None:
    if len(pattern) != len(parts):
        return None
    params: dict[str, str] = {}
    for want, got in zip(pattern, parts, strict=True):
        if want.startswith("{"):
            if not got:
                return None
            params[want[1:-1]] = unquote(got)
        elif want != got:
            return None
    return params
