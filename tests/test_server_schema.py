"""schemathesis against the service's OpenAPI schema, in-process (``from_asgi``).

Every operation is called with generated parameters and bodies (valid and invalid,
with an API key bound to two of the providers); the checks are that nothing answers
500 and that every response - status, media type, headers, body - is one the schema
declares. The number of examples per operation is bounded so that the run takes
well under a minute. The schema is loaded inside the test (schemathesis' lazy
``from_fixture`` loader does not run on pytest 9), so collecting this module starts
nothing.
"""

from __future__ import annotations

import itertools

import pytest

from test_server_support import ACME, ACME_KEY, make_config, start_pool, stop_pool

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a test extra")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode, checks  # noqa: E402

from provmark.server import create_app  # noqa: E402

#: Generated examples per operation and mode (valid, invalid; 8 operations).
MAX_EXAMPLES = 25
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_headers_conformance,
          checks.response_schema_conformance]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    pool = start_pool(workers=1, queue=8)
    cfg = make_config(tmp_path_factory.mktemp("schema"), queue=8, timeout_seconds=30)
    yield create_app(cfg, pool=pool)
    stop_pool(pool)


@pytest.mark.slow
def test_every_response_matches_the_schema(service):
    schema = schemathesis.openapi.from_asgi("/openapi.json", service)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/embed", "/v1/label", "/v1/detect",
                                              "/v1/inspect", "/v1/inspect/report", "/healthz",
                                              "/readyz", "/metrics"}
    calls = []
    runs = [(op, mode, None) for op, mode in itertools.product(operations, GenerationMode)
            # a GET here has no parameters and no body: nothing to make invalid
            if not (mode is GenerationMode.NEGATIVE and op.method.upper() == "GET")]
    # Random provider codes are all refused (403); a pass with the key's own provider
    # takes the generated bodies through to the image checks of embed and label.
    runs += [(op, GenerationMode.POSITIVE, {"provider": ACME, "content_id": 1,
                                            "produce_id": "p-1"})
             for op in operations if op.path in ("/v1/embed", "/v1/label")]
    for operation, mode, query in runs:
        @given(case=operation.as_strategy(mode, query=query))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            response = case.call_and_validate(headers={"X-API-Key": ACME_KEY}, checks=CHECKS)
            calls.append((operation.path, mode.value, response.status_code))

        run()
    statuses = {s for _, _, s in calls}
    assert 500 not in statuses
    # The generated requests reached the work endpoints' checks, not only the router.
    assert {200, 403, 415, 422} <= statuses, sorted(statuses)
