"""Custom sharding for the reference server: shard keys and which points each one holds.

qdrant-client's local mode has no shards, so the data plane keeps this small
table beside it. One collection in local mode still holds every point; a shard
key is the set of point ids written with it, and a read with a
``shard_key_selector`` is narrowed to those ids. Qdrant's rules, as far as a
client can see them (spec §4 lists the access side; the wording of the
refusals is inferred, Qdrant's own texts are not pinned down in the spec):

* shard keys exist only in collections created with ``sharding_method: custom``;
* a write to a custom-sharded collection names an existing shard key;
* dropping a shard key drops the points it holds.

Plain Python: no qdrant_client import, so the table costs nothing at start-up.
Callers hold the data plane's lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

ShardKey = int | str


class ShardKeyError(ValueError):
    """A request that breaks one of the rules above; ``not_found`` picks 404 over 400."""

    def __init__(self, message: str, *, not_found: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.not_found = not_found


@dataclass
class Sharding:
    custom: bool
    keys: dict[ShardKey, set[int | str]] = field(default_factory=dict)


def selector_keys(selector: object) -> list[ShardKey] | None:
    """A REST ``shard_key`` value (one key, a list, or ``{"target", "fallback"}``) as a key list."""
    if selector is None:
        return None
    if isinstance(selector, int | str):
        return [selector]
    if isinstance(selector, list | tuple):
        return [k for k in selector if isinstance(k, int | str)]
    target = getattr(selector, "target", None)
    if target is None and isinstance(selector, dict):
        target = selector.get("target")
    if isinstance(target, int | str):
        return [target]
    return None


class ShardKeyTable:
    """Sharding method and shard keys per collection name."""

    def __init__(self) -> None:
        self._by_collection: dict[str, Sharding] = {}

    def configure(self, collection: str, *, custom: bool) -> None:
        self._by_collection[collection] = Sharding(custom=custom)

    def forget(self, collection: str) -> None:
        self._by_collection.pop(collection, None)

    def is_custom(self, collection: str) -> bool:
        found = self._by_collection.get(collection)
        return found is not None and found.custom

    def keys(self, collection: str) -> list[ShardKey]:
        found = self._by_collection.get(collection)
        return list(found.keys) if found is not None else []

    def snapshot(self, collection: str) -> dict[str, object]:
        """What a collection snapshot records about sharding (JSON-ready)."""
        found = self._by_collection.get(collection) or Sharding(custom=False)
        return {"custom": found.custom,
                "keys": [{"key": k, "ids": sorted(ids, key=str)} for k, ids in found.keys.items()]}

    def restore(self, collection: str, state: object) -> None:
        if not isinstance(state, dict):
            self.configure(collection, custom=False)
            return
        sharding = Sharding(custom=bool(state.get("custom")))
        for entry in state.get("keys") or []:
            if isinstance(entry, dict) and isinstance(entry.get("key"), int | str):
                sharding.keys[entry["key"]] = set(entry.get("ids") or [])
        self._by_collection[collection] = sharding

    def _custom(self, collection: str, doing: str) -> Sharding:
        found = self._by_collection.get(collection)
        if found is None or not found.custom:
            raise ShardKeyError(f"Wrong input: {doing} is only possible for collections with custom sharding, "
                                f"and `{collection}` uses automatic sharding")
        return found

    def create(self, collection: str, key: ShardKey) -> None:
        sharding = self._custom(collection, "Creating a shard key")
        if key in sharding.keys:
            raise ShardKeyError(f"Wrong input: Shard key {key} already exists")
        sharding.keys[key] = set()

    def drop(self, collection: str, key: ShardKey) -> set[int | str]:
        """Remove ``key``; the ids of the points it held (the caller deletes them)."""
        sharding = self._custom(collection, "Dropping a shard key")
        if key not in sharding.keys:
            raise ShardKeyError(f"Not found: Shard key {key} does not exist", not_found=True)
        return sharding.keys.pop(key)

    def route_write(self, collection: str, selector: object, ids: Iterable[int | str]) -> None:
        """Check a write's shard key and record where its points now live."""
        keys = selector_keys(selector)
        found = self._by_collection.get(collection)
        if found is None or not found.custom:
            if selector is not None:
                raise ShardKeyError("Wrong input: Shard key selector is only allowed for custom sharding")
            return
        if not keys:
            raise ShardKeyError(f"Wrong input: Shard key must be specified for collection `{collection}` "
                                "with custom sharding")
        for key in keys:
            if key not in found.keys:
                raise ShardKeyError(f"Not found: Shard key {key} does not exist", not_found=True)
        moved = set(ids)
        for held in found.keys.values():
            held -= moved
        # A write naming several keys goes to each of them; one local copy stands for all.
        for key in keys:
            found.keys[key] |= moved

    def ids_for(self, collection: str, selector: object) -> set[int | str] | None:
        """The ids a read narrowed by ``selector`` may see; ``None`` = no narrowing."""
        keys = selector_keys(selector)
        if keys is None:
            return None
        found = self._by_collection.get(collection)
        if found is None or not found.custom:
            raise ShardKeyError("Wrong input: Shard key selector is only allowed for custom sharding")
        ids: set[int | str] = set()
        for key in keys:
            if key not in found.keys:
                raise ShardKeyError(f"Not found: Shard key {key} does not exist", not_found=True)
            ids |= found.keys[key]
        return ids
