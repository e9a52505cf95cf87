"""Config, orchestration, MLflow tracking and the ``fairrec`` CLI.

The only package that performs I/O on behalf of the user; it depends on
``evaluation`` and ``recsys``, never the other way round.
"""

from typing import Any

from training._config import ConfigError, apply_overrides, config_to_dict, load_config, parse_config
from training._schema import ExperimentConfig

__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "GateDecision",
    "Registry",
    "Tracker",
    "apply_overrides",
    "config_to_dict",
    "evaluate_gate",
    "format_decision",
    "load_config",
    "parse_config",
    "rules_from_config",
    "run_experiment",
]

# The run, the tracker and the registry pull in the whole library and MLflow; they load on
# first use (PEP 562) so that `import training` (and the CLI's start-up) stays light.
_LAZY = {
    "run_experiment": "training._run",
    "Tracker": "training._tracking",
    "Registry": "training._promotion",
    "GateDecision": "training._gate",
    "evaluate_gate": "training._gate",
    "format_decision": "training._gate",
    "rules_from_config": "training._gate",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'training' has no attribute {name!r}")
