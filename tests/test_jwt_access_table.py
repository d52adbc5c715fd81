"""Meta-tests of the JWT expectations (fixtures/catalog/jwt_access.yaml), as Qdrant's auth_tests have:
every access-table row has a JWT row, and the global-read column agrees with the table's access."""

from __future__ import annotations

from qdrant_conformance.fixtures.catalog.access import load_access_table
from qdrant_conformance.fixtures.catalog.jwt_access import load_jwt_access


def test_every_access_table_row_has_a_jwt_row() -> None:
    table = {row.id for row in load_access_table()}
    jwt = set(load_jwt_access())
    assert not table - jwt, f"access-table rows without a JWT expectation: {sorted(table - jwt)}"
    assert not jwt - table, f"JWT rows naming no access-table row: {sorted(jwt - table)}"


def test_global_roles_match_the_access_table() -> None:
    """A global r token is the read-only key and an m token the manage key (spec §4, §5.4)."""
    jwt = load_jwt_access()
    wrong = []
    for row in load_access_table():
        expect = jwt[row.id].expect
        if expect["m"] != "Y":
            wrong.append(f"{row.id}: m must be Y")
        want_r = "N" if row.access == "manage" else "Y"
        if row.ro_checked and expect["r"] != want_r:
            wrong.append(f"{row.id}: r is {expect['r']}, the access table says {row.access}")
    assert not wrong, "; ".join(wrong)


def test_collection_roles_never_exceed_global_read_on_global_operations() -> None:
    jwt = load_jwt_access()
    bad = [rid for rid, row in jwt.items() if row.expect["r"] == "N" and row.expect["coll_r"] == "Y"]
    assert not bad, f"a collection r token cannot do more than a global r token: {bad}"
