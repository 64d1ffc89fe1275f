"""Assignment as tables: least load first, ties by staff code, capacity kept, order of the cases kept."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.assignment import Worker, allot, free_places


def w(code: str, load: int, capacity: int) -> Worker:
    return Worker(id=ord(code[-1]), code=code, load=load, capacity=capacity)


@pytest.mark.parametrize(
    ("workers", "cases", "expected"),
    [
        # the least loaded first; each case raises its worker's load
        ([w("A", 2, 5), w("B", 0, 5)], "xyz", ["B", "B", "A"]),
        # equal loads: the lower staff code
        ([w("B", 1, 5), w("A", 1, 5)], "xyz", ["A", "B", "A"]),
        # a worker at capacity takes nothing, however lightly the others are loaded
        ([w("A", 3, 3), w("B", 4, 9)], "xy", ["B", "B"]),
        # over capacity (lowered since): still nothing
        ([w("A", 5, 3), w("B", 0, 1)], "xyz", ["B"]),
        # capacity 0: nothing
        ([w("A", 0, 0)], "x", []),
        # room runs out part-way: the first cases are given, the rest wait
        ([w("A", 0, 1), w("B", 0, 2)], "wxyz", ["A", "B", "B"]),
        # nobody: everything waits
        ([], "xy", []),
        # nothing waiting
        ([w("A", 0, 1)], "", []),
    ],
)
def test_allot(workers: list[Worker], cases: str, expected: list[str]) -> None:
    given_to = allot(list(cases), workers)
    assert [c for c, _ in given_to] == list(cases[: len(expected)])  # most urgent first, as offered
    assert [worker.code for _, worker in given_to] == expected


def test_free_places_counts_room_and_nothing_for_a_worker_over_capacity() -> None:
    assert free_places([w("A", 1, 3), w("B", 5, 3), w("C", 0, 0)]) == 2
    assert free_places([]) == 0


def _one_pass_per_case(cases: list[int], workers: list[Worker]) -> list[tuple[int, str]]:
    """The rule as first written: each case looks over the whole roster for the least-loaded worker with room."""
    load = {x.code: x.load for x in workers}
    out = []
    for case in cases:
        room = [x for x in workers if load[x.code] < x.capacity]
        if not room:
            break
        chosen = min(room, key=lambda x: (load[x.code], x.code))
        load[chosen.code] += 1
        out.append((case, chosen.code))
    return out


@given(
    st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=8),
    st.integers(0, 40),
)
def test_allot_gives_what_a_pass_over_the_roster_per_case_gives(roster: list[tuple[int, int]], n: int) -> None:
    workers = [Worker(id=i, code=f"W{i:02d}", load=load, capacity=cap) for i, (load, cap) in enumerate(roster)]
    cases = list(range(n))
    assert [(c, x.code) for c, x in allot(cases, workers)] == _one_pass_per_case(cases, workers)
    assert len(allot(cases, workers)) == min(n, free_places(workers))
