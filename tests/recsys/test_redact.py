"""redact_uri / redact_text: credentials masked, everything else kept character for character."""

from __future__ import annotations

import doctest

import pytest

import recsys._redact
from recsys import redact_text, redact_uri


@pytest.mark.parametrize(("uri", "expected"), [
    ("http://alice:s3cret@mlflow:5000/", "http://alice:***@mlflow:5000/"),
    ("http://alice:p@ss@word@host/x", "http://alice:***@host/x"),  # '@' inside the password
    ("https://token123@host", "https://***@host"),
    ("postgresql+psycopg2://u:pw@db:5432/mlflow", "postgresql+psycopg2://u:***@db:5432/mlflow"),
    ("s3://bucket/path?X-Amz-Signature=abc&X-Amz-Credential=k&x=1",
     "s3://bucket/path?X-Amz-Signature=***&X-Amz-Credential=***&x=1"),
    ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
    ("file:///tmp/mlruns", "file:///tmp/mlruns"),
    ("models:/fairrec@champion", "models:/fairrec@champion"),
    ("/local/bundle", "/local/bundle"),
    ("databricks", "databricks"),
])
def test_redact_uri(uri, expected):
    assert redact_uri(uri) == expected


def test_redact_text_masks_every_uri_in_a_message():
    text = ("API request to http://a:b@h:1/api failed; retry http://c:d@h:2/x?token=zz "
            "(mail x@y.org, no scheme: kept)")
    assert redact_text(text) == ("API request to http://a:***@h:1/api failed; retry http://c:***@h:2/x?token=*** "
                                 "(mail x@y.org, no scheme: kept)")


def test_docstring_examples():
    result = doctest.testmod(recsys._redact)
    assert result.attempted > 0 and result.failed == 0
