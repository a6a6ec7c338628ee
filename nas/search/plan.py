"""How a --time search spends its time: the search first, every trial given the same slice
of it (so a trial's score is what that net learns in that many seconds on this machine,
and a net too slow for the machine scores low instead of running over), then the final
training of the chosen net (nas.final) until the end. The time counts from the command's
start: imports and data loading are in it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from nas.errors import UsageError
from nas.schedule import end_margin

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
# A slice ranks nets by how fast they learn, not by where they end: on faces the nets that
# win 25 s (no batch norm, flatten heads) plateau early in a long training. So a long
# enough --time ends its search share with a runoff (nas.runoff): the best nets of
# RUNOFF_NETS different kinds, each trained again with the final recipe for its share of
# RUNOFF_SHARE of the search's time, and the final training takes the runoff's winner.
RUNOFF_NETS = 3
RUNOFF_SHARE = 0.4
SHORTEST_LOOK = 4 * LONGEST_SLICE  # a shorter runoff look would re-rank by the same speed


def trial_seconds(total: float, chosen: float | None = None) -> float:
    """Each trial's slice of a --time ``total``: ``chosen`` (--trial-time) when given, else
    SLICES of the search's share, at most LONGEST_SLICE seconds each."""
    return chosen or min(total * SEARCH_SHARE / SLICES, LONGEST_SLICE)


def check_trial_time(total: float | None, chosen: float | None) -> None:
    """--trial-time needs --time, and a slice that fits in the search's share of it."""
    if chosen is None:
        return
    if total is None:
        raise UsageError(f"--trial-time {chosen}s needs --time: it is the share of a --time "
                         f"search each trial gets (--epochs sizes trials otherwise)")
    if chosen > total * SEARCH_SHARE:
        raise UsageError(f"--trial-time {chosen}s is longer than the search's share of --time "
                         f"{total}s ({total * SEARCH_SHARE:.0f}s): no trial could run; give at "
                         f"most that, or more --time")


@dataclass(frozen=True)
class Plan:
    started: float  # time.time() at the command's start
    total: float  # --time, in seconds
    search: bool = True  # False: the search was done by an earlier run; all of it trains
    chosen_slice: float | None = None  # --trial-time

    @property
    def slice(self) -> float:
        return trial_seconds(self.total, self.chosen_slice)

    @property
    def search_end(self) -> float:
        """When the final training starts (the runoff, if any, ends here)."""
        return self.started + (self.total * SEARCH_SHARE if self.search else 0.0)

    @property
    def look(self) -> float:
        """Seconds of each runoff net's training; 0: no runoff (too short a --time)."""
        each = self.total * SEARCH_SHARE * RUNOFF_SHARE / RUNOFF_NETS
        return each if self.search and each >= SHORTEST_LOOK else 0.0

    @property
    def slices_end(self) -> float:
        """When the search's trial slices end (and the runoff starts)."""
        return self.search_end - self.look * RUNOFF_NETS

    @property
    def end(self) -> float:
        """When the final training's figures must be in."""
        return self.started + self.total - end_margin(self.total)

    def start_trials_until(self) -> float:
        """No trial starts after this: each gets its whole slice before the search's end."""
        return self.slices_end - self.slice

    def describe(self, images: int, final_weights: str) -> str:
        def at(t: float) -> str:
            return time.strftime("%H:%M:%S", time.localtime(t))

        runoff = (f", then a runoff of {RUNOFF_NETS} kinds of net ({self.look:.0f}s each) "
                  f"until {at(self.search_end)}" if self.look else "")
        search = (f"search until {at(self.slices_end)} (each trial {self.slice:.0f}s){runoff}, "
                  if self.search else "search done by an earlier run; ")
        return (f"plan: {search}then train the best net on all {images:,} training images "
                f"until {at(self.end)}, into {final_weights} (nas export --best writes it)")
