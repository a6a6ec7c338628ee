"""Size-vs-accuracy Pareto front of a study: table, CSV, JSON and the scatter plot.

The front is computed from all completed trials (smaller and higher validation accuracy
are better); size is params, or for a microcontroller the int8 model's bytes (flash) or
its activation peak (ram), counted from each trial's spec. Test accuracy is measured only for the trials on the front, once,
and cached in ``test_acc.json``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import optuna

from nas import files, records
from nas.study_folder import read_baselines, weights_path
from nas.trials import completed_trials, trial_val_acc
from nas.weights import load_trained, trial_spec
from nas.activations import peak_bytes
from nas.budget import count_int8_bytes
from nas.errors import UsageError
from nas.evaluate import measure_accuracy
from nas.progress import step

FIELDS = ("trial", "space", "params", "macs", "flash", "ram", "val_acc", "test_acc", "arch", "weights")
SIZES = {"params": "trainable parameters", "flash": "int8 model bytes (flash)",
         "ram": "int8 activation peak bytes (RAM)"}


@dataclass
class Row:
    trial: int
    space: str
    params: int
    macs: int
    flash: int
    ram: int
    val_acc: float
    test_acc: float | None
    arch: str
    weights: str = "search"  # whose figures these are: the search's trial weights


def rows(study: optuna.Study) -> list[Row]:
    return [_row(study, t) for t in completed_trials(study)]


def _row(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> Row:
    """A trial's point (its record is checked as read: a journal may be edited or planted)."""
    held = records.trial(trial, study.study_name)
    missing = [name for name in ("space", "params", "macs", "arch_str") if getattr(held, name) is None]
    if missing:
        raise UsageError(f"study {study.study_name!r}, trial {trial.number}: user attribute "
                         f"{missing[0]!r} is missing; the study was edited or damaged")
    flash, ram = held.flash, held.ram
    if flash is None or ram is None:  # a study from before they were recorded: from its spec
        spec = trial_spec(trial, study)
        flash, ram = count_int8_bytes(spec), peak_bytes(spec)
    return Row(trial.number, held.space, held.params, held.macs, flash, ram,
               trial_val_acc(trial), None, held.arch_str)


def front(all_rows: list[Row], size: str = "params") -> list[Row]:
    """Non-dominated rows, by ``size`` (a Row field: params, flash or ram) ascending: each
    has higher val accuracy than every smaller (or equal-size) row."""
    result, best = [], -1.0
    for row in sorted(all_rows, key=lambda r: (getattr(r, size), -r.val_acc, r.trial)):
        if row.val_acc > best:
            result.append(row)
            best = row.val_acc
    return result


def hypervolume(points: list[tuple[int, float]], budget: int) -> float:
    """Area dominated by (params, accuracy) points, up to the reference point (budget, 0.0),
    as a share of budget x 1.0: 1.0 would be a perfect net with no parameters. Points over
    the budget count for nothing."""
    inside = sorted((p, a) for p, a in points if p <= budget and a > 0)
    area, best = 0.0, 0.0
    for i, (params, acc) in enumerate(inside):
        best = max(best, acc)  # the best accuracy reachable with at most these params
        upto = inside[i + 1][0] if i + 1 < len(inside) else budget
        area += (upto - params) * best
    return area / budget


TEST_ACC_CACHE = "test_acc.json"  # test_acc_key -> test accuracy, front trials only


def test_acc_key(study_dir: Path, trial: int) -> str | None:
    """"N:<sha256 of its weights file>": a copied folder, or a journal replaced by a new
    search, has other weights under the same trial number, and so another key. None when
    the trial has no weights file."""
    path = weights_path(study_dir, trial)
    return f"{trial}:{files.sha256(path)[:16]}" if path.is_file() else None


def cached_test_acc(study_dir: Path) -> dict[str, float]:
    """The cache, or {} when it is missing or damaged: it is only ever a saving of time."""
    try:
        cache = json.loads((Path(study_dir) / TEST_ACC_CACHE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(cache, dict):
        return {}
    return {k: v for k, v in cache.items() if isinstance(v, float) and 0 <= v <= 1}


def score_test(study: optuna.Study, study_dir: Path, front_rows: list[Row], data, device) -> None:
    """Fill ``test_acc`` of the front's rows, from the cache or by evaluating the weights."""
    cache = cached_test_acc(study_dir)
    trials = {t.number: t for t in completed_trials(study)}
    test_x, test_y = data.test_x.to(device), data.test_y.to(device)
    keys = {row.trial: test_acc_key(study_dir, row.trial) for row in front_rows}
    todo = [row for row in front_rows if keys[row.trial] is not None and keys[row.trial] not in cache]
    with step(f"scoring {len(todo)} front trial(s) on {len(test_x):,} test images"):
        for row in todo:
            _, model = load_trained(study_dir, trials[row.trial], study=study)
            cache[keys[row.trial]] = measure_accuracy(model.to(device), test_x, test_y, data.info)
    for row in front_rows:
        row.test_acc = cache.get(keys[row.trial])
    files.write_json(Path(study_dir) / TEST_ACC_CACHE, cache, indent=1)


def write_front(study: optuna.Study, study_dir: Path, data, device, size: str = "params"
                ) -> tuple[list[Row], list[Path]]:
    """The study's front over ``size`` (params, flash or ram): computed, scored on the test
    set when ``data`` is given (a ``nas.data.Data``; else test accuracy is left out), and
    written: (front, files)."""
    all_rows = rows(study)
    if not all_rows:
        return [], []
    front_rows = front(all_rows, size)
    if data is not None:
        score_test(study, study_dir, front_rows, data, device)
    title = f"{study.study_name}: {len(all_rows)} trained trials"
    held = records.study(study)
    limit = held.limit({"params": "budget", "flash": "max_flash", "ram": "max_ram"}[size])
    return front_rows, write(study_dir, all_rows, front_rows, title, limit, size)


def write(study_dir: Path, all_rows: list[Row], front_rows: list[Row], title: str,
          budget: int | None = None, size: str = "params") -> list[Path]:
    study_dir = Path(study_dir)
    with files.replacing(study_dir / "pareto.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(asdict(r) for r in front_rows)
    files.write_json(study_dir / "pareto.json", [asdict(r) for r in front_rows])
    plot(study_dir / "pareto.png", all_rows, front_rows, title, budget,
         read_baselines(study_dir) if size == "params" else [], size)
    return [study_dir / name for name in ("pareto.csv", "pareto.json", "pareto.png")]


def plot(path: Path, all_rows: list[Row], front_rows: list[Row], title: str,
         budget: int | None = None, baselines: list[dict] = (), size: str = "params") -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    spaces = sorted({r.space for r in all_rows})
    colours = dict(zip(spaces, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for space in spaces:
        points = [r for r in all_rows if r.space == space]
        ax.scatter([getattr(r, size) for r in points], [r.val_acc for r in points], s=18,
                   alpha=0.55, color=colours[space], label=f"{space} ({len(points)} trials)")
    ax.step([getattr(r, size) for r in front_rows], [r.val_acc for r in front_rows], where="post",
            color="black", linewidth=1, zorder=2)
    ax.scatter([getattr(r, size) for r in front_rows], [r.val_acc for r in front_rows], s=60,
               facecolors="none", edgecolors="black", linewidths=1.3, zorder=3,
               label="Pareto front")
    draw_baselines(ax, baselines)
    if budget:
        ax.axvline(budget, color="grey", linestyle="--", linewidth=1,
                   label=f"budget {budget:,}" if size == "params" else f"--max-{size} {budget:,} B")
    ax.set_xscale("log")
    ax.set_xlabel(f"{SIZES[size]} (log)")
    ax.set_ylabel("validation accuracy")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    with files.replacing(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def draw_baselines(ax, baselines: list[dict]) -> None:
    """Reference models (nas baseline) as labelled stars."""
    for b in baselines:
        ax.scatter([b["params"]], [b["val_acc"]], marker="*", s=110, color="crimson", zorder=4)
        ax.annotate(f"{b['name']} ({b['epochs']} ep)", (b["params"], b["val_acc"]), fontsize=7,
                    xytext=(4, -10), textcoords="offset points")


def baseline_table(baselines: list[dict]) -> str:
    lines = [f"{'baseline':<16} {'params':>11} {'MACs':>14} {'val_acc':>8} {'test_acc':>8} "
             f"{'epochs':>6}  model"]
    for b in sorted(baselines, key=lambda b: b["params"]):
        lines.append(f"{b['name']:<16} {b['params']:>11,} {b['macs']:>14,} {b['val_acc']:>8.4f} "
                     f"{b['test_acc']:>8.4f} {b['epochs']:>6}  {b['model']}")
    return "\n".join(lines)


def table(front_rows: list[Row]) -> str:
    lines = [f"{'trial':>5}  {'space':<10} {'params':>9} {'MACs':>12} {'flash B':>9} {'RAM B':>9} "
             f"{'val_acc':>8} {'test_acc':>8}  arch"]
    for r in front_rows:
        test = f"{r.test_acc:.4f}" if r.test_acc is not None else "-"
        lines.append(f"{r.trial:>5}  {r.space:<10} {r.params:>9,} {r.macs:>12,} {r.flash:>9,} "
                     f"{r.ram:>9,} {r.val_acc:>8.4f} {test:>8}  {r.arch}")
    return "\n".join(lines)
