"""Aligning two lists that have no identifying key: a shortest edit script (Myers' O(ND)
algorithm) over element fingerprints, then the elements of each replaced run paired with their
most similar counterparts, so an inserted element is one addition and a modified one is one pair.

Both steps are bounded, because a baseline can hold a list of a hundred thousand elements:

- the edit script may take at most ``MAX_WORK`` steps (diagonals tried plus elements compared,
  counted as it runs) and at most ``MAX_EDITS`` edits (its trace is kept for the walk back,
  about ``MAX_EDITS`` squared integers). Past either the differing middle is paired by position,
  and the caller says so in the report;
- a replaced run is paired by similarity only while (removed x added) <= ``MAX_PAIRING`` cells;
  a larger one is paired in order;
- one comparison spends at most ``MAX_TOTAL_WORK`` steps on all its lists together (the caller
  keeps the count in ``Alignment.work``), so many lists near the bound cannot add up either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: Budget of the edit script in steps (a step is well under a microsecond of CPython).
MAX_WORK = 4_000_000
#: Budget of all the edit scripts of one comparison.
MAX_TOTAL_WORK = 40_000_000
#: Most edits searched for; the walk back keeps about MAX_EDITS**2 integers.
MAX_EDITS = 1_000
#: Largest replaced run (removed x added elements) paired by similarity.
MAX_PAIRING = 10_000


@dataclass
class Alignment:
    """``pairs``: (source index, target index) of elements compared with each other, equal or
    not; ``added``: source elements without a counterpart; ``removed``: target elements without
    one; ``positional``: the lists differed too much to search and were paired by position."""

    pairs: list[tuple[int, int]]
    added: list[int]
    removed: list[int]
    positional: bool = False
    #: Steps the edit script took.
    work: int = 0


def align(fa: Sequence[int], fb: Sequence[int], similarity: Callable[[int, int], int], max_work: int = MAX_WORK) -> Alignment:
    """Align fingerprints ``fa`` (source) with ``fb`` (target) in at most ``max_work`` steps.
    ``similarity(i, j)`` scores a removed-and-added pair (0: unrelated) and is called only
    inside replaced runs."""
    n, m = len(fa), len(fb)
    start = 0
    while start < n and start < m and fa[start] == fb[start]:
        start += 1
    end_a, end_b = n, m
    while end_a > start and end_b > start and fa[end_a - 1] == fb[end_b - 1]:
        end_a, end_b = end_a - 1, end_b - 1
    out = Alignment([(i, i) for i in range(start)], [], [])
    middle_a, middle_b = end_a - start, end_b - start
    matches = _myers(fa[start:end_a], fb[start:end_b], MAX_EDITS, min(max_work, MAX_WORK), out) if middle_a and middle_b else []
    if matches is None:
        out.positional = True
        matches = []
        runs = [(start, end_a, start, end_b)]
    else:
        runs = []
        i, j = start, start
        for x, y in matches:
            runs.append((i, start + x, j, start + y))
            i, j = start + x + 1, start + y + 1
        runs.append((i, end_a, j, end_b))
    for index, (i1, i2, j1, j2) in enumerate(runs):
        _pair_run(out, i1, i2, j1, j2, similarity, positional=out.positional)
        if index < len(matches):
            x, y = matches[index]
            out.pairs.append((start + x, start + y))
    out.pairs.extend((end_a + k, end_b + k) for k in range(n - end_a))
    return out


def _myers(a: Sequence[int], b: Sequence[int], max_d: int, max_work: int, out: Alignment) -> list[tuple[int, int]] | None:
    """The matched (i, j) of a shortest edit script from ``a`` to ``b``, in order; None when it
    needs more than ``max_d`` edits or ``max_work`` steps (counted in ``out.work``). Myers
    (1986), with the trace kept for the walk back."""
    n, m = len(a), len(b)
    work = 0
    offset = max_d + 1
    v = [0] * (2 * max_d + 3)
    trace: list[list[int]] = []
    for d in range(max_d + 1):
        # v[offset + k] for k in -d-1..d+1 is all the walk back reads of this round.
        trace.append(v[offset - d - 1 : offset + d + 2])
        work += d + 1
        for k in range(-d, d + 1, 2):
            if k == -d or (k != d and v[offset + k - 1] < v[offset + k + 1]):
                x = v[offset + k + 1]
            else:
                x = v[offset + k - 1] + 1
            y = x - k
            start = x
            while x < n and y < m and a[x] == b[y]:
                x, y = x + 1, y + 1
            work += x - start
            v[offset + k] = x
            if x >= n and y >= m:
                out.work = work
                return _walk_back(trace, n, m)
        if work > max_work:
            break
    out.work = work
    return None


def _walk_back(trace: list[list[int]], x: int, y: int) -> list[tuple[int, int]]:
    matches: list[tuple[int, int]] = []
    for d in range(len(trace) - 1, -1, -1):
        v = trace[d]  # v[k + d + 1] is the furthest x on diagonal k before round d

        k = x - y
        if k == -d or (k != d and v[k - 1 + d + 1] < v[k + 1 + d + 1]):
            prev_k = k + 1
        else:
            prev_k = k - 1
        prev_x = v[prev_k + d + 1] if d else 0
        prev_y = prev_x - prev_k if d else 0
        while x > prev_x and y > prev_y:
            x, y = x - 1, y - 1
            matches.append((x, y))
        x, y = prev_x, prev_y
    matches.reverse()
    return matches


def _pair_run(out: Alignment, i1: int, i2: int, j1: int, j2: int, similarity: Callable[[int, int], int], positional: bool) -> None:
    """Source elements i1..i2 were removed and target elements j1..j2 added in their place: pair
    the most similar ones in order (a weighted longest common subsequence), and the rest between
    two such pairs by position, so a modified element is one pair and not an addition and a
    removal. Unpaired elements are added (source) or removed (target)."""
    p, q = i2 - i1, j2 - j1
    if not p or not q:
        out.added.extend(range(i1, i2))
        out.removed.extend(range(j1, j2))
        return
    anchors: list[tuple[int, int]] = []
    if not positional and p * q <= MAX_PAIRING and (p > 1 or q > 1):
        anchors = _best_pairs(i1, p, j1, q, similarity)
    i, j = i1, j1
    for x, y in [*anchors, (i2, j2)]:
        zipped = min(x - i, y - j)
        out.pairs.extend((i + k, j + k) for k in range(zipped))
        out.added.extend(range(i + zipped, x))
        out.removed.extend(range(j + zipped, y))
        if x < i2:
            out.pairs.append((x, y))
        i, j = x + 1, y + 1


def _best_pairs(i1: int, p: int, j1: int, q: int, similarity: Callable[[int, int], int]) -> list[tuple[int, int]]:
    """The in-order pairs of positive similarity with the greatest total (dynamic programming
    over the p x q cells)."""
    score = [[0] * (q + 1) for _ in range(p + 1)]
    sim = [[similarity(i1 + x, j1 + y) for y in range(q)] for x in range(p)]
    for x in range(p - 1, -1, -1):
        row, below = score[x], score[x + 1]
        for y in range(q - 1, -1, -1):
            best = max(below[y], row[y + 1])
            if sim[x][y] > 0:
                best = max(best, sim[x][y] + below[y + 1])
            row[y] = best
    pairs: list[tuple[int, int]] = []
    x = y = 0
    while x < p and y < q:
        if sim[x][y] > 0 and score[x][y] == sim[x][y] + score[x + 1][y + 1]:
            pairs.append((i1 + x, j1 + y))
            x, y = x + 1, y + 1
        elif score[x][y] == score[x + 1][y]:
            x += 1
        else:
            y += 1
    return pairs
