"""Share of infeasible draws of each space, and how much of the budget the feasible ones
use, with and without --fill 0.9, on MNIST-shaped input: Optuna's random sampler (the first
trials of any study are random) and TPE (told random accuracies, so it draws from everywhere
its model has seen). With --mcu, under microcontroller limits instead (int8 flash and RAM
bytes, nas.budget / nas.activations). Usage: python benchmarks/infeasible_rate.py [--mcu]"""

import random
import statistics
import sys

import optuna

import search_spaces
from nas.budget import Constraints, check
from nas.data import DataInfo

DRAWS = 300
MNIST = DataInfo("mnist", 1, 28, 28, 10, (0.13,), (0.31,), tuple("0123456789"))


def draw(space: str, constraints: Constraints, sampler) -> tuple[float, list[float]]:
    """(share infeasible, budget share of each feasible draw)."""
    study = optuna.create_study(sampler=sampler)
    rng = random.Random(0)
    bad, fill = 0, []
    for _ in range(DRAWS):
        trial = study.ask()
        verdict = check(search_spaces.get_space(space)(trial, MNIST, constraints), constraints)
        if verdict.feasible:
            fill.append(verdict.params / constraints.budget)
        else:
            bad += 1
        study.tell(trial, rng.random())
    return bad / DRAWS, fill


MCU_LIMITS = ((4500, 2500), (64_000, 16_000), (64_000, 64_000))  # (flash, RAM) bytes


def mcu() -> None:
    for space in search_spaces.space_names():
        for flash, ram in MCU_LIMITS:
            constraints = Constraints(1_000_000, max_flash=flash, max_ram=ram)
            for name, sampler in (("random", optuna.samplers.RandomSampler(seed=0)),
                                  ("tpe", optuna.samplers.TPESampler(seed=0))):
                bad, _ = draw(space, constraints, sampler)
                print(f"{space:<10} max-flash {flash:>6,} B max-ram {ram:>6,} B {name:<6} "
                      f"infeasible {100 * bad:5.1f}%")


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if "--mcu" in sys.argv:
        return mcu()
    for space in search_spaces.space_names():
        for budget, layers in ((10_000, None), (50_000, None), (200_000, None), (50_000, (2, 4))):
            for fill_target in (0.0, 0.9):
                constraints = Constraints(budget, layers, fill=fill_target)
                for name, sampler in (("random", optuna.samplers.RandomSampler(seed=0)),
                                      ("tpe", optuna.samplers.TPESampler(seed=0))):
                    bad, fill = draw(space, constraints, sampler)
                    print(f"{space:<10} budget {budget:>7,} conv-layers {str(layers):<7} "
                          f"fill {fill_target:.1f} {name:<6} infeasible {100 * bad:5.1f}%  budget use: "
                          f"mean {statistics.mean(fill):.2f}, >= 0.9 in "
                          f"{100 * sum(f >= 0.9 for f in fill) / len(fill):3.0f}% of feasible")


if __name__ == "__main__":
    main()
