"""How a --time search spends its time: the search first, every trial given the same slice
of it (so a trial's score is what that net learns in that many seconds on this machine,
and a net too slow for the machine scores low instead of running over), then the final
training of the chosen net (nas.final) until the end. The time counts from the command's
start: imports and data loading are in it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from nas.trainer import end_margin

# The search's share of --time; the rest trains the chosen net on every training image.
SEARCH_SHARE = 0.5
# Trial slices the search's share is cut into, unless that makes them longer than
# LONGEST_SLICE (then there are more). Pruned trials hand back the rest of theirs,
# so more trials than this run: enough for TPE's random start-up draws and some guided ones.
SLICES = 12
# The longest slice. Past it a longer --time buys more slices, not longer ones: with the
# same seed, longer slices re-score the same nets, while more slices let TPE try new ones.
LONGEST_SLICE = 25.0
TRIAL_REPORTS = 4  # validations per slice, at its quarters: where the pruner may stop a trial


def trial_seconds(total: float) -> float:
    """Each trial's slice of a --time ``total``: SLICES of the search's share, at most
    LONGEST_SLICE seconds each."""
    return min(total * SEARCH_SHARE / SLICES, LONGEST_SLICE)


@dataclass(frozen=True)
class Plan:
    started: float  # time.time() at the command's start
    total: float  # --time, in seconds
    search: bool = True  # False: the search was done by an earlier run; all of it trains

    @property
    def search_end(self) -> float:
        return self.started + (self.total * SEARCH_SHARE if self.search else 0.0)

    @property
    def end(self) -> float:
        """When the final training's figures must be in."""
        return self.started + self.total - end_margin(self.total)

    def start_trials_until(self) -> float:
        """No trial starts after this: each gets its whole slice before the search's end."""
        return self.search_end - trial_seconds(self.total)

    def describe(self, images: int, final_weights: str) -> str:
        def at(t: float) -> str:
            return time.strftime("%H:%M:%S", time.localtime(t))

        search = (f"search until {at(self.search_end)} (each trial {trial_seconds(self.total):.0f}s), "
                  if self.search else "search done by an earlier run; ")
        return (f"plan: {search}then train the best net on all {images:,} training images "
                f"until {at(self.end)}, into {final_weights} (nas export --best writes it)")
