"""Requests generated from the OpenAPI schema (schemathesis), valid and invalid: no 5xx, no answer
outside the documented responses, invalid input rejected with a 4xx.

The schema is loaded in a fixture (as the operator: ``/openapi.json`` is the operator's) and
each operation driven through its Hypothesis strategy (schemathesis' ``from_fixture`` does not
support this pytest version). Each request carries the credential its owner would send: a token
for the path's user id, a user's token for similar items, the operator token for operations,
and a page session for the transparency page, so the fuzzing reaches past the access checks.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation

from recsys.serving import create_app
from tests.serving.helpers import AS_OPERATOR, as_user

OPERATIONS = [
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/model"),
    ("GET", "/users/{user_id}/recommendations"),
    ("GET", "/items/{item_id}/similar"),
    ("GET", "/users/{user_id}/consent"),
    ("PUT", "/users/{user_id}/consent"),
    ("POST", "/users/{user_id}/feedback"),
    ("GET", "/users/{user_id}/consent/categories"),
    ("PUT", "/users/{user_id}/consent/categories"),
    ("POST", "/admin/reload"),
    ("GET", "/transparency"),
    ("POST", "/transparency/personalisation"),
]


@pytest.fixture
def api_schema(bundles, make_settings):
    app = create_app(make_settings(bundles["ease_fair"], k_max=20, max_exclusions=5))
    return schemathesis.openapi.from_asgi("/openapi.json", app, headers=AS_OPERATOR)


def test_every_operation_is_fuzzed(api_schema):
    documented = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert documented == set(OPERATIONS)


NO_INPUT = {("GET", "/health"), ("GET", "/ready"), ("GET", "/model")}
CASES = [(m, p, GenerationMode.POSITIVE) for m, p in OPERATIONS] + [
    (m, p, GenerationMode.NEGATIVE) for m, p in OPERATIONS if (m, p) not in NO_INPUT
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES,
                         ids=[f"{m} {p} {mode.value}" for m, p, mode in CASES])
def test_generated_requests(api_schema, method, path, mode):
    """The default run: the same 25 requests per operation every time (a CI result is reproducible)."""
    _fuzz(api_schema, method, path, mode, examples=25, derandomize=True)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path", "mode"), CASES,
                         ids=[f"{m} {p} {mode.value}" for m, p, mode in CASES])
def test_generated_requests_explore(api_schema, method, path, mode):
    """``make test-all``: 400 fresh random requests per operation, to find what the fixed set does not."""
    _fuzz(api_schema, method, path, mode, examples=400, derandomize=False)


def _fuzz(api_schema, method: str, path: str, mode: GenerationMode, *, examples: int, derandomize: bool) -> None:
    operation = api_schema.find_operation_by_path(method, path)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    def check(case):
        case.call_and_validate(headers=credentials(case))

    check()


def credentials(case) -> dict[str, str]:
    """What the owner of the operation sends (the user of the path, a user, the operator).

    Nothing when the case's headers are the invalid part (the required ``Authorization`` left out
    or malformed): overriding them would turn a negative case into a valid request.
    """
    components = case.meta.components if case.meta else {}
    header = components.get(ParameterLocation.HEADER)
    if header is not None and header.mode == GenerationMode.NEGATIVE:
        return {}
    path = case.operation.path
    if path.startswith("/users/"):
        user_id = (case.path_parameters or {}).get("user_id")
        return as_user(user_id if isinstance(user_id, str) and user_id else "someone")
    if path.startswith("/items/"):
        return as_user("someone")
    if path.startswith("/transparency"):
        return as_user("someone")  # the page also takes the token as a bearer credential
    return AS_OPERATOR
