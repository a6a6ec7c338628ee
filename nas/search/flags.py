"""The flags of `nas search`, grouped as its --help shows them (the settings themselves,
their defaults and checks, are nas.config's)."""

from __future__ import annotations

import argparse

from nas.augment import AUGMENTS
from nas.config import PRUNERS, SAMPLERS, duration_flag
from nas.datasets import dataset_names
from nas.errors import integer
from search_spaces import space_names


def add_search_parser(sub, func) -> None:
    p = sub.add_parser("search", help="search architectures under a parameter budget",
                       argument_default=argparse.SUPPRESS)
    p.add_argument("--config", help="TOML study preset (see studies/); flags override it")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    g = p.add_argument_group("space and budget")
    g.add_argument("--space", help=f"search space: {', '.join(space_names())} (default mobilenet); "
                                   f"several, e.g. cnn,mobilenet: each trial draws its family")
    g.add_argument("--budget", type=integer, help="max trainable params, e.g. 50000 or 50k (default 50k)")
    g.add_argument("--conv-layers", help="allowed number of conv layers, MIN-MAX, e.g. 2-4")
    g.add_argument("--max-macs", type=integer, help="max multiply-accumulates per image")
    g.add_argument("--min-speed", type=integer, help="stop trials training fewer images/s here")
    g.add_argument("--fill", type=float, help="prefer nets using this share of the budget: 0.9")

    g = p.add_argument_group("data")
    g.add_argument("--dataset", help=f"{', '.join(dataset_names())}; arrays and folder as "
                                     f"NAME:PATH, fer2013 optionally (default mnist)")
    g.add_argument("--data-dir", help="folder holding the datasets (default $NAS_DATA_DIR or ./data)")
    g.add_argument("--download", action="store_true", help="download the dataset if missing")
    g.add_argument("--limit-train", type=integer, help="train on at most N images (quick runs)")
    g.add_argument("--image-size", type=integer, help="folder datasets: resize images to NxN")
    g.add_argument("--grayscale", action="store_true", help="folder datasets: one channel")

    g = p.add_argument_group("training (each trial)")
    g.add_argument("--epochs", type=integer, help="training epochs per trial (default 3; with "
                                                   "--time: as many as fit in a trial's slice)")
    g.add_argument("--batch-size", type=integer,
                   help="training batch size (default 128 on CPU, 512 on a GPU)")
    g.add_argument("--lr", type=float, help="peak learning rate, AdamW with warm-up + cosine "
                                             "(default 0.005 x sqrt(batch/128): 0.005 at 128, 0.01 at 512)")
    g.add_argument("--augment", help=f"{' | '.join(AUGMENTS)} (default: the dataset's own)")
    g.add_argument("--seed", type=integer, help="sampler and training seed (default 0)")

    g = p.add_argument_group("search")
    g.add_argument("--trials", type=integer, help="trials of these spaces in the study (default 20)")
    g.add_argument("--objective", help="accuracy (default; front "
                                       "computed afterwards) | pareto (maximise accuracy, minimise "
                                       "params) | pareto-macs (and MACs); pareto stops trials "
                                       "with its own rule")
    g.add_argument("--sampler", help=f"{' | '.join(SAMPLERS)} (default tpe)")
    g.add_argument("--pruner", help=f"{' | '.join(PRUNERS)} (default median)")
    g.add_argument("--timeout", type=integer, help="seconds: start no trial after this long")
    g.add_argument("--time", type=duration_flag, help="the whole command's time: search (from 25m on, "
                   "ending in a runoff of the best kinds of net), then the best net trained on every "
                   "training image until then (10m, 2h, 1h30m); nas export --best writes that model")
    g.add_argument("--trial-time", type=duration_flag, help="with --time: each trial's slice, e.g. "
                   "100s (default: a twelfth of the search's half, at most 25s)")
    g.add_argument("--full", action="store_true", help="full size (20 trials x 3 epochs on every "
                   "image) without a GPU too; there, a search given no size runs about 10 minutes")

    g = p.add_argument_group("storage and workers")
    g.add_argument("--study", help="study name (default <dataset>-<budget>, e.g. mnist-50k)")
    g.add_argument("--storage", help="Optuna database URL or journal file path "
                                     "(default runs/<study>/journal.log)")
    g.add_argument("--runs-dir", help="where study folders go (default runs)")
    g.add_argument("--jobs", type=integer, help="worker processes on the one study (default 1)")
    g.add_argument("--memory-limit", type=float,
                   help="GiB each worker's trials may use on top of its dataset (GPU memory on "
                        "a GPU, heap on CPU); a trial over it fails as out of memory")

    g = p.add_argument_group("device")
    g.add_argument("--device", help="auto | cpu | cuda | cuda:N (default auto: GPU when there is one)")
    g.add_argument("--gpus", help="CUDA devices to spread the --jobs workers over, e.g. 0,1 "
                                  "(several workers per GPU are fine)")
    g.add_argument("--precision", help="auto | bf16 | fp32 (default auto: bf16 autocast on a GPU)")
    g.add_argument("--no-cuda-graph", dest="cuda_graph", action="store_false",
                   help="train eagerly on the GPU instead of replaying a captured CUDA graph")
    p.set_defaults(func=func)
