"""Records made when first read (#15): the core's LazyList, a bulk-loaded registry's records
and compiled data, and the ids' natural order worked out from their numbers.

The oracles: a plain list of the same items, the row-by-row loader's registry (which makes
every record at once), and :func:`id_key` sorting one id at a time.
"""

from __future__ import annotations

import copy
import gc
import pickle
import random
import re
import threading
from collections.abc import Sequence

import numpy as np
import pytest

import ipallow
from ipallow._trie import LazyList
from ipallow.registry import _io, id_key, natural_order, parse_registry
from ipallow.registry._bulk import _distinct_ids_order
from ipallow.registry._ids import one_prefix_numbers


def counting_list(length: int):
    """A LazyList of i * 10 and the list of the indexes ``make`` was called with."""
    calls: list[int] = []

    def make(i: int) -> int:
        calls.append(i)
        return i * 10
    return LazyList(length, make), calls


# -- LazyList --------------------------------------------------------------------------------

def test_a_lazy_list_reads_as_the_list_of_its_items():
    rng = random.Random(3)
    for length in (0, 1, 2, 7, 100):
        lazy, _ = counting_list(length)
        expected = [i * 10 for i in range(length)]
        assert len(lazy) == length and isinstance(lazy, Sequence)
        for _ in range(50):
            index = rng.randint(-length - 3, length + 3)
            if -length <= index < length:
                assert lazy[index] == expected[index]
            else:
                with pytest.raises(IndexError):
                    lazy[index]
            start, stop, step = rng.randint(-9, 9), rng.randint(-9, 9), rng.choice([1, 2, -1, -3])
            assert lazy[start:stop:step] == expected[start:stop:step]
        assert list(lazy) == expected and lazy == expected and lazy == LazyList(length, lambda i: i * 10)
        assert not (lazy != expected) and lazy != expected + [1] and lazy != "not a list"
        assert bool(lazy) is bool(expected)


def test_each_item_is_made_once_and_the_same_object_is_read_after():
    made = []
    lazy = LazyList(4, lambda i: made.append(i) or [i])
    first = lazy[2]
    assert lazy[2] is first and lazy[-2] is first and list(lazy)[2] is first
    assert sorted(made) == [0, 1, 2, 3] and made.count(2) == 1
    assert repr(lazy) == "<LazyList: 4 items, 4 made>"


def test_bad_indexes_and_arguments_raise_as_a_list_does():
    lazy, calls = counting_list(3)
    for index in (3, -4, 2**63, -(2**63) - 1, 10**30):
        with pytest.raises(IndexError):
            lazy[index]
    for index in ("1", 1.0, None):
        with pytest.raises(TypeError):
            lazy[index]
    assert lazy[np.int64(1)] == 10 and lazy[True] == 10
    assert calls == [1]
    with pytest.raises(ValueError):
        LazyList(-1, int)
    with pytest.raises(TypeError):
        LazyList(1, "not callable")
    with pytest.raises(TypeError):
        LazyList("1", int)
    with pytest.raises(TypeError):
        lazy[0] = 1                                     # read-only


def test_an_item_whose_make_raised_is_made_again_at_the_next_read():
    failures = [ValueError("first"), None]

    def make(i: int) -> str:
        failure = failures.pop(0)
        if failure is not None:
            raise failure
        return "made"
    lazy = LazyList(1, make)
    with pytest.raises(ValueError, match="first"):
        lazy[0]
    assert repr(lazy) == "<LazyList: 1 items, 0 made>"
    assert lazy[0] == "made" and lazy[0] == "made"


def test_a_make_that_reads_its_own_list_keeps_the_first_item_kept():
    """make() runs Python code: the item it made may already be kept when it returns."""
    lazy: LazyList

    def make(i: int) -> list:
        if i == 0:
            inner = lazy[1]                 # another item: fine
            return ["outer", inner]
        return ["inner"]
    lazy = LazyList(2, make)
    assert lazy[0] == ["outer", ["inner"]] and lazy[0][1] is lazy[1]

    depth = []

    def reentrant(i: int) -> list:
        depth.append(i)
        if len(depth) == 1:
            return [lazy2[0], "outer"]      # the same item, made inside its own make
        return ["inner"]
    lazy2 = LazyList(1, reentrant)
    got = lazy2[0]
    assert got == ["inner"] and lazy2[0] is got        # the first one kept stays


def test_threads_reading_at_once_all_get_the_one_kept_item():
    barrier = threading.Barrier(4)
    lazy = LazyList(200, lambda i: object())
    seen: list[list] = [[] for _ in range(4)]

    def read(slot: int) -> None:
        barrier.wait()
        seen[slot] = [lazy[i] for i in range(200)]
    threads = [threading.Thread(target=read, args=(slot,)) for slot in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in range(200):
        assert all(reads[i] is lazy[i] for reads in seen)


def test_a_lazy_list_pickles_and_copies_as_the_list_of_its_items():
    lazy, _ = counting_list(5)
    for copied in (pickle.loads(pickle.dumps(lazy)), copy.copy(lazy), copy.deepcopy(lazy)):
        assert type(copied) is list and copied == [0, 10, 20, 30, 40]


def test_a_cycle_through_a_lazy_list_is_collected():
    class Holder:
        pass
    holder = Holder()
    holder.items = LazyList(1, lambda i: holder)        # make refers to holder, holder to the list
    assert holder.items[0] is holder
    probe = __import__("weakref").ref(holder)
    del holder
    gc.collect()
    assert probe() is None


# -- a registry read in bulk ----------------------------------------------------------------

Y2019, Y2030, Y2041 = 1546300800.0, 1893456000.0, 2240524800.0     # POSIX seconds, January 1st


def export(rows: int, seed: int = 5) -> str:
    rng = random.Random(seed)
    lines = ["id,cidr,owner,category,status,valid_from,expires_at,note"]
    for number in rng.sample(range(rows * 3), rows):
        lines.append(f"PTA-{number},10.{number // 256 % 256}.{number % 256}.0/24,Owner {number % 7} ,"
                     f"{rng.choice(['company_vpn', 'other'])},{rng.choice(['active', 'Suspended', 'active'])},"
                     f"{rng.choice(['', '2020-01-01'])},{rng.choice(['', '2040-06-01T12:00:00Z'])},"
                     f"{rng.choice(['', 'n'])}")
    return "\n".join(lines) + "\n"


def made(registry) -> int:
    """How many of a bulk registry's records have been made."""
    found = re.fullmatch(r"<LazyList: [\d,]+ items, ([\d,]+) made>", repr(registry._records))
    assert found, "expected a registry read in bulk"
    return int(found.group(1).replace(",", ""))


def test_a_bulk_registry_makes_no_record_until_one_is_read(monkeypatch):
    text = export(400)
    registry = parse_registry(text, "r.csv")
    assert made(registry) == 0
    first_id = text.split("\n")[1].split(",")[0]
    assert registry.index_of(first_id) == 0 and "400 registrations" in repr(registry)
    assert registry.boundaries and registry._standing_counts(Y2030)["active"] > 0
    allowlist = ipallow.Allowlist.from_registry(registry, at=Y2030)
    assert len(allowlist) > 100 and allowlist.lookup("8.8.8.8") is None
    assert made(registry) == 0
    with monkeypatch.context() as patch:
        patch.setattr(_io, "read_csv_registry", lambda text, name: None)
        eager = parse_registry(text, "r.csv")
    assert registry == eager and eager == registry and list(registry) == list(eager)
    assert registry._standing_counts(1.9e9) == eager._standing_counts(1.9e9)


def test_lookup_data_is_the_registrys_own_record_made_on_first_match():
    registry = parse_registry(export(300), "r.csv")
    allowlist = ipallow.Allowlist.from_registry(registry, at=Y2030)
    assert made(registry) == 0
    assert allowlist.lookup("8.8.8.8") is None and made(registry) == 0
    index = len(allowlist) // 2
    networks = allowlist[index].networks             # the entry reads its data: one record made
    assert made(registry) == 1
    match = allowlist.lookup(networks[0].broadcast_address)
    assert match.index == index and made(registry) == 1
    assert match.data is allowlist[index].data is registry.get(match.data.id)
    assert allowlist.lookup(networks[0].network_address).data is match.data


def test_a_bulk_registry_pickles_saves_and_compiles_as_the_row_by_row_one(monkeypatch, tmp_path):
    text = export(250, seed=9)
    registry = parse_registry(text, "r.csv")
    with monkeypatch.context() as patch:
        patch.setattr(_io, "read_csv_registry", lambda text, name: None)
        eager = parse_registry(text, "r.csv")
    restored = pickle.loads(pickle.dumps(registry))
    assert restored == eager and type(restored._records) is tuple
    probes = [r.network.broadcast_address for r in eager] + ["8.8.8.8", "10.255.255.255", "::1"]
    for at in (Y2019, Y2030, Y2041):
        lazy_list = ipallow.Allowlist.from_registry(registry, at=at)
        eager_list = ipallow.Allowlist.from_registry(eager, at=at)
        assert isinstance(lazy_list.compiled.data, LazyList) and type(eager_list.compiled.data) is list
        assert lazy_list.compiled.data == eager_list.compiled.data
        assert [lazy_list.lookup(p) for p in probes] == [eager_list.lookup(p) for p in probes]
        lazy_list.save(tmp_path / "lazy.ipallow", created=0)
        eager_list.save(tmp_path / "eager.ipallow", created=0)
        assert (tmp_path / "lazy.ipallow").read_bytes() == (tmp_path / "eager.ipallow").read_bytes()


# -- the ids' natural order from their numbers -----------------------------------------------

def random_ids(rng: random.Random) -> list[str]:
    count = rng.choice([1, 2, 3, 10, 200])
    prefix = rng.choice(["PTA-", "", "x", "PTA-1", "Ü-", "a b-", "A\n"])
    shape = rng.choice(["plain", "plain", "zeros", "text after", "empty", "twice", "long", "mixed"])
    numbers = rng.sample(range(10**rng.randint(1, 6)), min(count, 10)) if count <= 10 else \
        rng.sample(range(10**6), count)
    ids = [f"{prefix}{n}" for n in numbers]
    if shape == "zeros":
        ids[0] = f"{prefix}0{numbers[0]}"
    elif shape == "text after":
        ids[-1] += "b"
    elif shape == "empty":
        ids[0] = prefix
    elif shape == "twice":
        ids.append(ids[0])
    elif shape == "long":
        ids[0] = f"{prefix}{10**rng.choice([17, 18, 19, 25])}"
    elif shape == "mixed":
        ids[0] = "Q" + ids[0]
    rng.shuffle(ids)
    return ids


@pytest.mark.parametrize("seed", range(300))
def test_natural_order_of_a_list_agrees_with_id_key(seed):
    ids = random_ids(random.Random(seed))
    expected = sorted(range(len(ids)), key=lambda i: id_key(ids[i]))
    for given in (ids, np.array(ids, dtype=str)):
        got = natural_order(given).tolist()
        assert sorted(got) == list(range(len(ids)))
        # equal ids may come in either order: compare the ids they put in order
        assert [ids[i] for i in got] == [ids[i] for i in expected]
    numbers = one_prefix_numbers(ids)
    if numbers is not None:                 # then every id is one text and its number
        prefix = ids[0].rstrip("0123456789")
        assert numbers.tolist() == [int(i[len(prefix):]) for i in ids] and all(i.startswith(prefix) for i in ids)


@pytest.mark.parametrize("seed", range(200))
def test_distinct_ids_are_told_from_ids_given_twice_or_empty(seed):
    ids = [i.strip() for i in random_ids(random.Random(seed))]
    order = _distinct_ids_order(ids)
    if len(set(ids)) != len(ids) or "" in ids:
        assert order is None
    else:
        assert order is not None
        if order is not True:
            assert [ids[i] for i in order.tolist()] == sorted(ids, key=id_key)


def test_the_common_shape_takes_the_fast_path():
    ids = [f"PTA-{n}" for n in random.Random(1).sample(range(10**6), 5000)] + ["PTA-0"]
    assert one_prefix_numbers(ids) is not None
    for odd in (["PTA-01", "PTA-2"], ["PTA-1", "PTB-2"], ["PTA-1", "PTA-"], ["PTA-1", "PTA-2x"],
                ["PTA-1", "PTA-" + "9" * 19], ["PTA-\u0661", "PTA-2"], ["A\n1", "A\n2"], []):
        assert one_prefix_numbers(odd) is None, odd


def test_statuses_spelled_several_ways_are_counted_as_one_without_making_records(monkeypatch):
    text = "id,cidr,status\n" + "".join(
        f"PTA-{i},10.0.{i}.0/24,{spelling}\n"
        for i, spelling in enumerate(["Suspended", "suspended", " SUSPENDED", "active", "Active", "revoked"]))
    registry = parse_registry(text, "r.csv")
    counts = registry._standing_counts(Y2030)
    assert made(registry) == 0
    with monkeypatch.context() as patch:
        patch.setattr(_io, "read_csv_registry", lambda text, name: None)
        eager = parse_registry(text, "r.csv")
    assert counts == eager._standing_counts(Y2030)
    assert (counts["suspended"], counts["active"], counts["revoked"], counts["pending"]) == (3, 2, 1, 0)


def test_made_counts_past_a_thousand():
    registry = parse_registry(export(1500), "r.csv")
    assert [registry[i].id for i in range(1234)] and made(registry) == 1234
    assert len(list(registry)) == 1500 and made(registry) == 1500
