"""``nas compare runs/a runs/b ...``: the "at equal parameters, which family wins, and by how
much" question. Every study is split by search space into groups ("study/space"); the plot
shows each group's trials and front, the table each group's best net within a few parameter
limits (by the search's score; by its test accuracy once nas train has trained every pick
of a row), the winner and its margin in points.
"""

from __future__ import annotations

import json
from pathlib import Path

from nas import files, pareto
from nas.storage import load_study, matching_storage
from nas.study_folder import read_baselines
from nas.errors import UsageError
from nas.train import latest_retrain


def groups(study_dirs: list[str], storages: list[str] | None = None
           ) -> tuple[dict[str, list[pareto.Row]], dict[str, Path]]:
    """({"study/space": rows}, {"study/space": its study folder}). ``storages``: the
    --storage URLs the user named, each used by the folder whose study.json names it."""
    result: dict[str, list[pareto.Row]] = {}
    folders: dict[str, Path] = {}
    for study_dir in study_dirs:
        study = load_study(study_dir, matching_storage(study_dir, storages))
        rows = pareto.rows(study)
        if not rows:
            raise UsageError(f"{study_dir}: study {study.study_name!r} has no completed trial")
        cache = pareto.cached_test_acc(study_dir)  # test accuracy of front trials, if scored
        for row in rows:
            row.test_acc = cache.get(pareto.test_acc_key(study_dir, row.trial))
            name = f"{Path(study_dir).name}/{row.space}"
            result.setdefault(name, []).append(row)
            folders[name] = Path(study_dir)
    return result, folders


def default_limits(all_groups: dict[str, list[pareto.Row]]) -> list[int]:
    """A quarter, half and all of the largest model any group trained."""
    largest = max(r.params for rows in all_groups.values() for r in rows)
    return sorted({max(1, round(largest * f, -2)) for f in (0.25, 0.5, 1.0)})


def best_within(rows: list[pareto.Row], limit: int) -> pareto.Row | None:
    fitting = [r for r in rows if r.params <= limit]
    return max(fitting, key=lambda r: (r.val_acc, -r.params)) if fitting else None


TRAINED = ("test_acc", "val_acc", "epochs", "time_limit", "augment", "label_smoothing", "mixup",
           "weights")


def compare(study_dirs: list[str], limits: list[int] | None = None,
            storages: list[str] | None = None) -> tuple[dict, list[dict]]:
    """Each group's pick within each limit is its best trial by the search's score. A row
    is judged on the picks' test accuracy after nas train (its latest run without a
    teacher) once every pick has one: a short trial's score is not what the net reaches
    trained in full; until then on the search's scores, and the row says which."""
    all_groups, folders = groups(study_dirs, storages)
    table = []
    for limit in limits or default_limits(all_groups):
        picks = {name: best_within(rows, limit) for name, rows in all_groups.items()}
        trained = {name: latest_retrain(folders[name], r.trial) if r else None
                   for name, r in picks.items()}
        chosen = [name for name, r in picks.items() if r is not None]
        on_trained = bool(chosen) and all(trained[name] for name in chosen)

        def score(name: str) -> float:
            return trained[name]["test_acc"] if on_trained else picks[name].val_acc

        # More accurate wins; at equal accuracy, the smaller net.
        ranked = sorted((score(name), -r.params, name) for name, r in picks.items() if r is not None)
        entry = {"limit": limit, "by": "trained test_acc" if on_trained else "search val_acc",
                 "best": {name: None if r is None else
                          {"trial": r.trial, "params": r.params, "val_acc": r.val_acc,
                           "test_acc": r.test_acc, "arch": r.arch, "study_dir": str(folders[name]),
                           "trained": trained[name] and {k: trained[name].get(k) for k in TRAINED}}
                          for name, r in picks.items()}}
        if len(ranked) >= 2:
            entry["winner"] = ranked[-1][2]
            entry["margin_points"] = round(100 * (ranked[-1][0] - ranked[-2][0]), 2)
        table.append(entry)
    return all_groups, table


def format_table(table: list[dict]) -> str:
    names = list(table[0]["best"])
    width = max(14, *(len(n) for n in names))
    lines = [f"{'params <=':>10}  " + "  ".join(f"{n:>{width}}" for n in names)
             + "  judged on        winner (margin)"]
    untrained = {}
    for entry in table:
        cells = []
        for name in names:
            best = entry["best"][name]
            if best is None:
                cells.append(f"{'-':>{width}}")
                continue
            acc = best["trained"]["test_acc"] if entry["by"] == "trained test_acc" else best["val_acc"]
            cells.append(f"{acc:.4f} @ {best['params']:>7,}".rjust(width))
            if best["trained"] is None:
                untrained[(best["study_dir"], best["trial"])] = None
        verdict = (f"{entry['winner']} (+{entry['margin_points']:.2f} points)"
                   if "winner" in entry else "-")
        lines.append(f"{entry['limit']:>10,}  " + "  ".join(cells) + f"  {entry['by']:<16} {verdict}")
    if untrained:
        lines.append("\nnot trained in full yet; to judge on trained nets, train each pick with "
                     "one recipe (nas train's defaults, or the same --time for all):")
        lines += [f"  nas train {folder} --trial {trial}" for folder, trial in untrained]
    return "\n".join(lines)


def plot(path: Path, all_groups: dict[str, list[pareto.Row]], baselines: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, rows) in enumerate(all_groups.items()):
        colour = colours[i % len(colours)]
        ax.scatter([r.params for r in rows], [r.val_acc for r in rows], s=14, alpha=0.4, color=colour)
        front = pareto.front(rows)
        ax.step([r.params for r in front], [r.val_acc for r in front], where="post", color=colour,
                linewidth=1.5, label=f"{name} ({len(rows)} trials)")
    pareto.draw_baselines(ax, baselines)
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (log)")
    ax.set_ylabel("validation accuracy")
    ax.set_title("params vs accuracy by search space")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    with files.replacing(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def is_compare_table(path: Path) -> bool:
    """Whether ``path`` holds what nas compare writes beside its plot (so it may be replaced)."""
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(table, list) and bool(table)
            and all(isinstance(e, dict) and {"limit", "best"} <= e.keys() for e in table))


def run_compare(study_dirs: list[str], out: str | None, limits: list[int] | None,
                storages: list[str] | None = None, force: bool = False) -> tuple[str, list[Path]]:
    out_path = Path(out or "compare.png")
    if out_path.suffix != ".png":
        raise UsageError(f"--out must end in .png, got {str(out_path)!r}")
    table_path = out_path.with_suffix(".json")
    if table_path.exists() and not force and not is_compare_table(table_path):
        raise UsageError(f"{table_path} exists and is not a table nas compare wrote; nas writes "
                         f"its table there (beside --out): pick another --out, or add --force to replace it")
    all_groups, table = compare(study_dirs, limits, storages)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    plot(out_path, all_groups, [b for d in study_dirs for b in read_baselines(d)])
    files.write_json(table_path, table)
    return format_table(table), [out_path, table_path]
