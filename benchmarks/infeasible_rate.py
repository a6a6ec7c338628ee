"""Share of infeasible draws of each space, and how much of the budget the feasible ones
use, with and without --fill 0.9, on MNIST-shaped input: Optuna's random sampler (the first
trials of any study are random) and TPE (told random accuracies, so it draws from everywhere
its model has seen). Usage: python benchmarks/infeasible_rate.py"""

import random
import statistics

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


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
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
