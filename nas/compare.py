"""``nas compare runs/a runs/b ...``: the "at equal parameters, which family wins, and by how
much" question. Every study is split by search space into groups ("study/space"); the plot
shows each group's trials and front, the table each group's best validation accuracy within
a few parameter limits, the winner and its margin in points.
"""

from __future__ import annotations

import json
from pathlib import Path

from nas import files, pareto, store
from nas.errors import UsageError


def groups(study_dirs: list[str], storages: list[str] | None = None) -> dict[str, list[pareto.Row]]:
    """``storages``: the --storage URLs the user named, each used by the folder whose
    study.json names it."""
    result: dict[str, list[pareto.Row]] = {}
    for study_dir in study_dirs:
        study = store.load_study(study_dir, store.matching_storage(study_dir, storages))
        rows = pareto.rows(study)
        if not rows:
            raise UsageError(f"{study_dir}: study {study.study_name!r} has no completed trial")
        cache = pareto.cached_test_acc(study_dir)  # test accuracy of front trials, if scored
        for row in rows:
            row.test_acc = cache.get(pareto.test_acc_key(study_dir, row.trial))
            result.setdefault(f"{Path(study_dir).name}/{row.space}", []).append(row)
    return result


def default_limits(all_groups: dict[str, list[pareto.Row]]) -> list[int]:
    """A quarter, half and all of the largest model any group trained."""
    largest = max(r.params for rows in all_groups.values() for r in rows)
    return sorted({max(1, round(largest * f, -2)) for f in (0.25, 0.5, 1.0)})


def best_within(rows: list[pareto.Row], limit: int) -> pareto.Row | None:
    fitting = [r for r in rows if r.params <= limit]
    return max(fitting, key=lambda r: (r.val_acc, -r.params)) if fitting else None


def compare(study_dirs: list[str], limits: list[int] | None = None,
            storages: list[str] | None = None) -> tuple[dict, list[dict]]:
    all_groups = groups(study_dirs, storages)
    table = []
    for limit in limits or default_limits(all_groups):
        best = {name: best_within(rows, limit) for name, rows in all_groups.items()}
        # More accurate wins; at equal accuracy, the smaller net.
        ranked = sorted((r.val_acc, -r.params, name) for name, r in best.items() if r is not None)
        entry = {"limit": limit, "best": {name: None if r is None else
                                          {"trial": r.trial, "params": r.params, "val_acc": r.val_acc,
                                           "test_acc": r.test_acc, "arch": r.arch}
                                          for name, r in best.items()}}
        if len(ranked) >= 2:
            entry["winner"] = ranked[-1][2]
            entry["margin_points"] = round(100 * (ranked[-1][0] - ranked[-2][0]), 2)
        table.append(entry)
    return all_groups, table


def format_table(table: list[dict]) -> str:
    names = list(table[0]["best"])
    width = max(14, *(len(n) for n in names))
    lines = [f"{'params <=':>10}  " + "  ".join(f"{n:>{width}}" for n in names) + "  winner (margin)"]
    for entry in table:
        cells = []
        for name in names:
            best = entry["best"][name]
            cells.append(f"{'-':>{width}}" if best is None else
                         f"{best['val_acc']:.4f} @ {best['params']:>7,}".rjust(width))
        verdict = (f"{entry['winner']} (+{entry['margin_points']:.2f} points)"
                   if "winner" in entry else "-")
        lines.append(f"{entry['limit']:>10,}  " + "  ".join(cells) + f"  {verdict}")
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
    plot(out_path, all_groups, [b for d in study_dirs for b in store.read_baselines(d)])
    files.write_json(table_path, table)
    return format_table(table), [out_path, table_path]
