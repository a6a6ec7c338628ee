"""The search: an Optuna study whose trials draw a spec, check it, train it briefly and
report validation accuracy per epoch so weak trials can be stopped early.

    run.py        orchestration: one process or --jobs workers, then the front
    study.py      the study: storage, sampler, pruner, what it records, progress lines
    objective.py  one trial, top-down: sample, check, build, train, report, prune
    recovery.py   signals (Ctrl-C, SIGTERM) and trials whose worker died

Two objectives (``--objective``):
- ``accuracy`` (default): maximise validation accuracy, with Optuna's pruners; the
  params-vs-accuracy front is computed afterwards from every completed trial (``nas.pareto``).
- ``pareto`` / ``pareto-macs``: a multi-objective study (maximise accuracy, minimise params,
  and MACs). Optuna cannot prune those (``Trial.report`` raises), so trials are stopped by
  our own rule, ``objective.size_aware_stop``.

Only `nas search` (nas.commands.search) imports ``run``; other commands read the study
through nas.storage, nas.records and nas.trials.
"""
