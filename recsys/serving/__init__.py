"""Serving: model bundles (what a registered version holds) and the HTTP service on top of them.

* :func:`save_bundle` / :func:`load_bundle`: the candidate exactly as evaluated.
* :func:`resolve_model`: the registry version behind ``models:/NAME@ALIAS`` (or
  ``models:/NAME/VERSION``), refused unless its gate passed.
* :class:`ServeSettings`, :func:`create_app`, :func:`serve`: the FastAPI service
  (recommendations with explanations, similar items, consent, audit, a
  transparency page, reload without restart).
* :class:`ConsentStore`, :func:`opted_out_users`, :func:`drop_opted_out`: consent
  to personalisation, honoured by serving and by training.
* :func:`issue_user_token`, :func:`verify_user_token`: the signed, expiring user
  tokens the service accepts (``docs/security.md``).
"""

from recsys.serving._auth import TokenRefused, issue_user_token, verify_user_token
from recsys.serving._audit import (
    AUDIT_FIELDS,
    AuditRecord,
    JsonLinesAuditLog,
    SqliteAuditLog,
    open_audit_log,
)
from recsys.serving._digest import bundle_sha256
from recsys.serving._bundle import (
    ModelBundle,
    NotServableError,
    load_bundle,
    save_bundle,
)
from recsys.serving._consent import (
    ConsentRecord,
    ConsentStore,
    StoreUnavailableError,
    drop_opted_out,
    opted_out_users,
)
from recsys.serving._consent_log import consent_history, drop_withdrawn_categories, withdrawn_categories
from recsys.serving._engine import ListRequest, ServingEngine, UnknownItemError
from recsys.serving._erasure import ERASED_USER, ErasureReport, PersonalData, erase_user, personal_data
from recsys.serving._settings import ServeSettings
from recsys.serving._source import (
    GateInfo,
    GateRefusedError,
    ModelRef,
    ModelSourceError,
    ServedModel,
    resolve_model,
)

from typing import Any

__all__ = [
    "bundle_sha256",
    "AUDIT_FIELDS",
    "AuditRecord",
    "ConsentRecord",
    "ConsentStore",
    "GateInfo",
    "GateRefusedError",
    "JsonLinesAuditLog",
    "ListRequest",
    "ModelBundle",
    "ModelRef",
    "ModelSourceError",
    "NotServableError",
    "ServeSettings",
    "ServedModel",
    "ServingEngine",
    "SqliteAuditLog",
    "StoreUnavailableError",
    "TokenRefused",
    "UnknownItemError",
    "build_server",
    "create_app",
    "consent_history",
    "ERASED_USER",
    "ErasureReport",
    "PersonalData",
    "erase_user",
    "personal_data",
    "drop_opted_out",
    "drop_withdrawn_categories",
    "issue_user_token",
    "load_bundle",
    "open_audit_log",
    "opted_out_users",
    "withdrawn_categories",
    "resolve_model",
    "save_bundle",
    "serve",
    "verify_user_token",
]

# The HTTP layer (FastAPI, uvicorn) loads on first use (PEP 562): training imports this
# package for bundles and consent and should not pay for a web framework.
_LAZY = {"create_app": "recsys.serving._app", "build_server": "recsys.serving._serve", "serve": "recsys.serving._serve"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'recsys.serving' has no attribute {name!r}")
