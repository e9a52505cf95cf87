"""Serving: model bundles (what a registered version holds) and, on top of them, the HTTP service."""

from recsys.serving._bundle import ModelBundle, NotServableError, load_bundle, save_bundle

__all__ = ["ModelBundle", "NotServableError", "load_bundle", "save_bundle"]
