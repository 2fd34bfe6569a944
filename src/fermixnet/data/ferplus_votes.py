"""FERPlus label from ten annotators' votes (Sec. 4.1.2: "maximum voting", following RAN [13]).

Vote columns of `fer2013new.csv` / `label.csv`: neutral, happiness, surprise, sadness, anger,
disgust, fear, contempt, unknown, NF (not a face); ten votes per image.

Rules (`rule=`):

- `max` (default): the image is dropped when NF has at least half of the votes (not a face), or
  when unknown or NF has strictly more votes than the best expression; otherwise the label is the
  expression with the most votes (unknown/NF votes take no part in the argmax). Ties between
  expressions follow `tie`: `drop` (default; the image is ambiguous), `first` (lowest column, the
  behaviour of `argmax` in most public FERPlus loaders), or `random` (seeded per image).
- `majority`: the FERPlus paper's "majority voting" training mode (Barsoum et al., 2016, and the
  official `ferplus.py`): votes of 1 are removed as outliers, the winner must hold more than half
  of the remaining votes, and images whose winner is unknown or NF (or that have no such winner)
  are dropped. No ties can occur.

Each dropped image is counted under its reason in the data set's report.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

VOTE_COLUMNS: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
    "unknown", "NF",
)  # fmt: skip
RULES: tuple[str, ...] = ("max", "majority")
TIES: tuple[str, ...] = ("drop", "first", "random")


def vote_label(
    votes: Sequence[int], rule: str = "max", tie: str = "drop", seed: int = 0, key: str = ""
) -> tuple[int | None, str]:
    """(FERPlus column index 0..7, "") or (None, reason the image is dropped).

    Args:
        votes: the ten vote counts.
        rule: `max` or `majority` (see the module docstring).
        tie: `drop`, `first` or `random` (only for `max`).
        seed: seed of `random` tie-breaking.
        key: image id; `random` ties are a function of (seed, key), so re-reading gives the same
            labels.

    Raises:
        ValueError: unknown rule or tie, or not ten non-negative votes.
    """
    if rule not in RULES:
        raise ValueError(f"ferplus vote rule must be one of {', '.join(RULES)}, got {rule!r}")
    if tie not in TIES:
        raise ValueError(f"ferplus tie rule must be one of {', '.join(TIES)}, got {tie!r}")
    if len(votes) != 10 or min(votes) < 0:
        raise ValueError(f"expected 10 non-negative vote counts, got {list(votes)}")
    if rule == "majority":
        return _majority(votes)
    total = sum(votes)
    expressions = list(votes[:8])
    best = max(expressions)
    if total == 0:
        return None, "no votes"
    if 2 * votes[9] >= total:
        return None, "not a face (NF >= half)"
    if max(votes[8], votes[9]) > best:
        return None, "unknown/NF wins"
    winners = [i for i, v in enumerate(expressions) if v == best]
    if len(winners) == 1 or tie == "first":
        return winners[0], ""
    if tie == "drop":
        return None, "tie"
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return winners[digest[0] % len(winners)], ""


def _majority(votes: Sequence[int]) -> tuple[int | None, str]:
    kept = [v if v > 1 else 0 for v in votes]  # single votes are outliers (official ferplus.py)
    total = sum(kept)
    best = max(kept)
    if total == 0 or 2 * best <= total:
        return None, "no majority"
    winner = kept.index(best)
    if winner >= 8:
        return None, "unknown/NF wins"
    return winner, ""
