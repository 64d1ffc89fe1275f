"""Batch gate: is a whole file's size so far outside its source's history that it must be held?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median


@dataclass(frozen=True)
class RowCountGate:
    """Hold a file whose row count is more than `ratio` times off the recent median, beyond `slack` rows."""

    ratio: float = 5.0
    slack: int = 20  # small feeds swing a lot in relative terms; only absolute swings this big count
    min_history: int = 5  # files of the same source needed before the gate has an opinion


SIZE_HOLD = "row count "  # how every size hold's reason begins: the one kind of hold staff may release


def is_size_hold(reason: str | None) -> bool:
    """Whether a file was held for its size alone (its bytes were readable and well formed)."""
    return bool(reason) and str(reason).startswith(SIZE_HOLD)


def row_count_hold_reason(rows: int, history: Sequence[int], gate: RowCountGate = RowCountGate()) -> str | None:
    """The reason to hold a file of `rows` records given earlier files' counts, or None to let it through."""
    if len(history) < gate.min_history:
        return None
    typical = median(history)
    high = typical * gate.ratio + gate.slack
    low = typical / gate.ratio - gate.slack
    if rows > high:
        return f"{SIZE_HOLD}{rows} is far above this source's recent median of {typical:g} (limit {high:g})"
    if rows < low:
        return f"{SIZE_HOLD}{rows} is far below this source's recent median of {typical:g} (limit {low:g})"
    return None
