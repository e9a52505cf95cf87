"""Config, orchestration, MLflow tracking and the ``fairrec`` CLI.

The only package that performs I/O on behalf of the user; it depends on
``evaluation`` and ``recsys``, never the other way round.
"""

from training._config import ConfigError, apply_overrides, config_to_dict, load_config, parse_config
from training._schema import ExperimentConfig

__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "apply_overrides",
    "config_to_dict",
    "load_config",
    "parse_config",
]
