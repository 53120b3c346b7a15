"""Schemathesis against the OpenAPI document, in-process: no 5xx, answers match the document.

The app runs on schemathesis's own ASGI event loop (its lifespan started there), with the
bootstrap admin token, on this run's PostgreSQL and a Redis prefix of its own. Each operation
gets a bounded number of generated requests, valid (positive) and invalid (negative) ones.
The live feed (`GET /api/v1/events`) never ends by design and is covered by test_feed.py.

schemathesis's pytest plugin (`from_fixture` + `parametrize`) does not run on pytest 9 (it
reads the removed `Item._nodeid`), so each operation's strategy is driven with hypothesis.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from redis.asyncio import Redis
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from baton_operator_api.main import create_app
from baton_operator_api.settings import OperatorApiSettings
from baton_shared.testing import delete_prefix, new_prefix

pytestmark = [
    pytest.mark.integration,
    # schemathesis draws with `random` inside its strategies; not ours to fix.
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]

ADMIN_TOKEN = "bat_fuzz_" + secrets.token_urlsafe(24)
MAX_EXAMPLES = 15  # per operation and mode: the whole run stays well under a minute
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


@pytest.fixture(scope="module")
def api_schema(database_url: str, redis_url: str) -> Iterator[OpenApiSchema]:
    """The app's OpenAPI document, loaded through the app itself (which starts it)."""
    prefix = new_prefix()
    app = create_app(
        OperatorApiSettings(
            database_url=database_url,
            redis_url=redis_url,
            redis_prefix=prefix,
            baton_env="test",
            consumer_block_ms=50,
            BATON_BOOTSTRAP_ADMIN_TOKEN=ADMIN_TOKEN,
            BATON_BOOTSTRAP_ADMIN_NAME=f"fuzz-admin-{uuid.uuid4().hex[:6]}",
        )
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    yield schema.exclude(path="/api/v1/events")
    asgi.shutdown_lifespans()

    async def cleanup() -> None:
        client = Redis.from_url(redis_url, decode_responses=True)
        await delete_prefix(client, prefix)
        await client.aclose()

    asyncio.run(cleanup())


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors_and_answers_match_the_document(
    api_schema: OpenApiSchema, mode: GenerationMode
) -> None:
    failures: dict[str, str] = {}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Case) -> None:
            case.call_and_validate(
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, checks=CHECKS
            )

        try:
            fuzz()
        except Unsatisfiable:
            # No parameters and no body: there is no invalid request to generate.
            assert mode == GenerationMode.NEGATIVE, operation.label
        except (Exception, FailureGroup) as exc:
            failures[operation.label] = str(exc)

    assert not failures, "\n\n".join(f"{label}:\n{error}" for label, error in failures.items())
