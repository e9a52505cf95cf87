"""Read, override and validate an experiment config, with errors a person can act on.

A bad config fails here, before any data is read, with the file, the dotted
field path, what is allowed and what was received.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from recsys._redact import redact_uri
from recsys.errors import FairrecError
from training._schema import ExperimentConfig

__all__ = ["ConfigError", "apply_overrides", "config_params", "config_to_dict", "load_config", "parse_config"]

# A config is a few kilobytes. The caps stop a "billion laughs" file (a few lines of nested
# aliases that expand to billions of values) before anything walks the expanded value.
MAX_CONFIG_BYTES = 1_000_000
MAX_CONFIG_NODES = 100_000

# Tags of the discriminated unions: pydantic puts them into error locations,
# a person never wrote them, so they are left out of the dotted path.
_UNION_TAGS = {
    "synthetic", "movielens-100k", "table",
    "random_holdout", "leave_last_k", "time_cutoff",
    "popularity", "item_knn", "als", "bpr", "ease",
    "reweight", "fair_share", "exposure_budget", "calibration", "user_blend", "two_stage",
}


class ConfigError(FairrecError):
    """The config file cannot be used; the message lists every problem found."""


def _dotted(loc: Sequence[int | str]) -> str:
    parts: list[str] = []
    for i, part in enumerate(loc):
        if isinstance(part, str) and part in _UNION_TAGS and i > 0:
            continue
        if isinstance(part, str) and part.startswith("function-"):
            continue
        if isinstance(part, int):
            if parts:
                parts[-1] += f"[{part}]"
            else:
                parts.append(f"[{part}]")
        else:
            parts.append(part)
    return ".".join(parts) or "(top level)"


def _describe(error: dict[str, Any]) -> str:
    msg = str(error["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if error["type"] == "missing":
        return "required field is missing"
    if error["type"] in {"model_type", "dict_type"}:
        return f"expected a mapping of keys to values, received {error['input']!r}"
    ctx = error.get("ctx") or {}
    if error["type"] == "union_tag_invalid":
        key = str(ctx.get("discriminator", "")).strip("'")
        return (
            f"unknown {key} {ctx.get('tag')!r}; allowed: {ctx.get('expected_tags')}"
        )
    if error["type"] == "union_tag_not_found":
        key = str(ctx.get("discriminator", "")).strip("'")
        return f"missing the key {key!r} that chooses the component"
    shown = error.get("input")
    if error["type"].startswith("value_error"):
        return msg
    return f"{msg[0].lower()}{msg[1:]}; received {shown!r}"


def _format(source: str, err: ValidationError) -> str:
    lines = [f"{source}: invalid config ({err.error_count()} problem(s))"]
    for e in err.errors():
        lines.append(f"  - {_dotted(e['loc'])}: {_describe(e)}")
    return "\n".join(lines)


def _set_path(raw: dict[str, Any], dotted: str, value: Any) -> None:
    node: Any = raw
    keys = dotted.split(".")
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        if isinstance(node, list):
            idx = _list_index(node, key, dotted)
            if last:
                node[idx] = value
            else:
                node = node[idx]
            continue
        if not isinstance(node, dict):
            where = ".".join(keys[:depth])
            raise ConfigError(f"--set {dotted}: {where} is a value, not a section")
        if last:
            node[key] = value
        else:
            node = node.setdefault(key, {})


def _list_index(node: list[Any], key: str, dotted: str) -> int:
    if key.lstrip("-").isdigit():
        idx = int(key)
        if not -len(node) <= idx < len(node):
            raise ConfigError(f"--set {dotted}: index {idx} is outside the list of {len(node)}")
        return idx
    names = [m.get("name") if isinstance(m, dict) else None for m in node]
    if key in names:
        return names.index(key)
    raise ConfigError(
        f"--set {dotted}: no list entry named {key!r}; names: {', '.join(map(str, names))}"
    )


def _expanded_size(root: yaml.Node, source: str) -> int:
    """How many YAML nodes the document holds once every alias is expanded.

    PyYAML composes an alias as a second reference to the anchored node, so the graph
    is small while its expansion is not; counting with a memo over that graph stays
    linear. Written by hand: PyYAML has no limit on alias expansion.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ConfigError(f"{source}: an alias refers to a node that contains it (a recursive value)")
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        active.discard(key)
        sizes[key] = min(total, MAX_CONFIG_NODES + 1)
        return sizes[key]

    return size(root)


def _safe_load(text: str, source: str) -> Any:
    """``yaml.safe_load`` with a cap on the number of values once aliases are expanded."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, source) > MAX_CONFIG_NODES:
            raise ConfigError(
                f"{source}: expected at most {MAX_CONFIG_NODES:,} values once YAML aliases are expanded, "
                "received more (a config is a few hundred values; is this an alias bomb?)"
            )
        return loader.construct_document(node)
    except RecursionError:
        raise ConfigError(f"{source}: values are nested too deeply (expected a config a few levels deep)") from None
    finally:
        loader.dispose()


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``dotted.key=value`` overrides (values parsed as YAML) to a raw config mapping.

    List entries are addressed by index or by their ``name``.

    >>> apply_overrides({"models": [{"name": "als", "params": {}}]}, ["models.als.params.factors=8"])
    {'models': [{'name': 'als', 'params': {'factors': 8}}]}
    """
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected dotted.key=value")
        try:
            value = _safe_load(text, f"--set {key.strip()}") if text.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: value is not valid YAML ({exc})") from None
        _set_path(raw, key.strip(), value)
    return raw


def parse_config(
    raw: Any, *, source: str = "<config>", base_dir: Path | None = None
) -> ExperimentConfig:
    """Validate a raw mapping; relative paths are resolved against ``base_dir``."""
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level (name, data, split, models, ...), "
            f"received {type(raw).__name__}"
        )
    try:
        return ExperimentConfig.model_validate(raw, context={"base_dir": base_dir})
    except ValidationError as err:
        raise ConfigError(_format(source, err)) from None


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """Read a YAML config file, apply overrides and validate it.

    Relative paths inside the file (and in overrides) are resolved against the
    config file's own directory.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path}: expected a config file of at most {MAX_CONFIG_BYTES:,} bytes, received {size:,} bytes"
        )
    try:
        raw = _safe_load(path.read_text(encoding="utf-8"), str(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: expected UTF-8 text ({exc.reason})") from None
    if raw is None:
        raise ConfigError(f"{path}: the file is empty")
    if isinstance(raw, dict):
        raw = apply_overrides(raw, overrides)
    return parse_config(raw, source=str(path), base_dir=path.resolve().parent)


def config_to_dict(config: ExperimentConfig) -> dict[str, Any]:
    """The resolved config (defaults filled in, paths absolute) as plain YAML-able data.

    This is what a run writes to ``config.yaml`` and logs as MLflow params, so a password
    in ``tracking.uri`` is masked.

    >>> from training._schema import ExperimentConfig
    >>> cfg = ExperimentConfig.model_validate({"name": "t", "data": {"loader": "synthetic"},
    ...     "models": [{"name": "p", "type": "popularity"}], "tracking": {"uri": "http://me:pw@host"}})
    >>> config_to_dict(cfg)["tracking"]["uri"]
    'http://me:***@host'
    """
    data = config.model_dump(mode="json")
    data["tracking"]["uri"] = redact_uri(data["tracking"]["uri"])
    return data


def config_params(config: ExperimentConfig) -> dict[str, Any]:
    """The config as flat MLflow parameters: ``models.0.params.factors`` -> 64."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(f"{prefix}.{i}", v)
        else:
            out[prefix] = value

    walk("", config_to_dict(config))
    return out
