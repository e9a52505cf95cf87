"""The base of every config section, and the path helpers sections share."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator

__all__ = ["MAX_SEED", "Section"]


class Section(BaseModel):
    """Base of every config section: frozen, unknown keys rejected with the allowed ones listed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = list(cls.model_fields)
            unknown = [k for k in data if k not in allowed]
            if unknown:
                key = unknown[0]
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise ValueError(
                    f"unknown key {key!r}{suggestion}; allowed keys: {', '.join(allowed)}"
                )
        return data


MAX_SEED = 2**32 - 1  # numpy's legacy seeding and implicit take 32-bit unsigned seeds


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    if not value.is_absolute() and base is not None:
        value = Path(base) / value
    return value


def _base_note(value: Path, info: ValidationInfo) -> str:
    """For a relative path that was not found: which base it was resolved against (not the shell's)."""
    base = (info.context or {}).get("base_dir")
    if value.is_absolute() or base is None:
        return ""
    return (f" ({str(value)!r} was resolved against the config file's directory {base}, also in --set; "
            "give an absolute path to use another)")
