"""Share of infeasible draws of each space, with Optuna's random sampler (the first trials
of any study are random), on MNIST-shaped input. Usage: python benchmarks/infeasible_rate.py"""

import collections

import optuna

import search_spaces
from nas.budget import Constraints, check
from nas.data import DataInfo

DRAWS = 300
MNIST = DataInfo("mnist", 1, 28, 28, 10, (0.13,), (0.31,), tuple("0123456789"))


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    for space in search_spaces.space_names():
        for budget, layers in ((10_000, None), (50_000, None), (200_000, None), (50_000, (2, 4))):
            constraints = Constraints(budget, layers)
            study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
            reasons, fill = collections.Counter(), []
            for _ in range(DRAWS):
                trial = study.ask()
                verdict = check(search_spaces.get_space(space)(trial, MNIST, constraints), constraints)
                if verdict.feasible:
                    fill.append(verdict.params / budget)
                else:
                    reasons[verdict.violations[0].split(" ", 1)[1]] += 1
                study.tell(trial, 0.0)
            bad = sum(reasons.values())
            print(f"{space:<10} budget {budget:>7,} conv-layers {str(layers):<7} infeasible "
                  f"{100 * bad / DRAWS:5.1f}%  mean budget use of feasible {sum(fill) / max(1, len(fill)):.2f}")


if __name__ == "__main__":
    main()
