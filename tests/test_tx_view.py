"""A transaction's view of its own writes (state/tx.py): what one step removed is gone for
the rest of that step, by every way of asking — single lookups stay lazy, iteration merges.
bench/mutate.py found that nothing checked this (every command today removes last)."""

from __future__ import annotations

from conftest import ok

from gitconvoy.state.model import Bead
from gitconvoy.state.store import Store
from gitconvoy.state.tx import Tx


def test_an_object_removed_in_a_transaction_is_gone_from_its_view(state_repo):
    kept = ok("bead", "create", "kept")
    gone = ok("bead", "create", "gone")
    store = Store.open()

    def mutate(tx: Tx) -> dict[str, object]:
        tx.put(Bead("t-new", "made and dropped in this step"))
        tx.remove("beads", gone)  # from the base snapshot
        tx.remove("beads", "t-new")  # from this transaction's own writes
        return {
            "lookup": tx.beads.get(gone), "contains": gone in tx.beads,
            "own lookup": tx.beads.get("t-new"), "kept": tx.beads.get(kept) is not None,
            "ids": sorted(tx.beads), "len": len(tx.beads),
        }

    seen = store.transact(mutate, "remove two")
    assert seen == {"lookup": None, "contains": False, "own lookup": None, "kept": True,
                    "ids": [kept], "len": 1}
    assert sorted(Store.open().snapshot(fresh=True).beads) == [kept]


def test_a_removed_object_put_again_is_back(state_repo):
    bead_id = ok("bead", "create", "back")
    store = Store.open()

    def mutate(tx: Tx) -> str | None:
        tx.remove("beads", bead_id)
        tx.put(Bead(bead_id, "put again"))
        found = tx.beads.get(bead_id)
        return found.title if found else None

    assert store.transact(mutate, "remove and put") == "put again"
    assert Store.open().snapshot(fresh=True).beads[bead_id].title == "put again"
