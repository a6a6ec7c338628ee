"""Search spaces: functions ``(trial, data_info, constraints) -> ArchSpec``.

A space uses only ``trial.suggest_*``, so it works with any Optuna sampler and with
``MinimalTrial`` (which always takes the smallest choice). Spaces register by name
(``registry``); ``get_space`` names the valid ones when asked for an unknown one. Widths
are drawn within the budget by ``sampling``.
"""

from search_spaces import densenet, mobilenet, plain_cnn  # noqa: F401  (registers them)
from search_spaces.registry import (MinimalTrial, UnknownSpace,  # noqa: F401
                                    get_space, parse_spaces, register_space, sample_family,
                                    smallest_model, space_names)
