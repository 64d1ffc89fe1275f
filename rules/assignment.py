"""Assignment: a waiting case goes to the least-loaded worker of its queue and force who has room.

Cases are offered most urgent first (highest tier, then the longest waiting,
then case reference); among workers with room, the one with the fewest open
cases takes it, ties going to the lower staff code. A case no worker has room
for waits, and is offered again the next night.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

Case = TypeVar("Case")


@dataclass(frozen=True)
class Worker:
    """An active worker of one queue and force: open cases now and the most they take."""

    id: int
    code: str
    load: int
    capacity: int


def free_places(workers: Iterable[Worker]) -> int:
    """How many more cases these workers can take between them."""
    return sum(max(w.capacity - w.load, 0) for w in workers)


def allot(waiting: Iterable[Case], workers: Sequence[Worker]) -> list[tuple[Case, Worker]]:
    """Each case, in the order given, with the worker who takes it; cases beyond the workers' room are not given.

    A heap of the workers with room, keyed by (load, code): each case costs a logarithm of the roster, not a
    pass over it, so a night that assigns tens of thousands of cases among hundreds of workers stays linear.
    """
    room = [(w.load, w.code, i) for i, w in enumerate(workers) if w.load < w.capacity]
    heapq.heapify(room)
    given: list[tuple[Case, Worker]] = []
    for case in waiting:
        if not room:
            break
        load, code, i = room[0]
        given.append((case, workers[i]))
        if load + 1 < workers[i].capacity:
            heapq.heapreplace(room, (load + 1, code, i))
        else:
            heapq.heappop(room)
    return given
