"""The API fuzzed from its own OpenAPI schema (schemathesis): no 500s, every response as documented."""

import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from helpers import SEED_FILE, make_settings
from hypothesis import HealthCheck, settings
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from newsqa.ingest.pipeline import ingest_paths
from newsqa.service.answering.answer import Answerer
from newsqa.service.api.app import create_app
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

# schemathesis reads the schema when this module is collected, so the app exists by then; its store is
# filled (and its startup run) by the fixture below, before the first case.
DATA_DIR = Path(tempfile.mkdtemp(prefix="newsqa-fuzz-")) / "data"
FUZZING = make_settings(DATA_DIR, rate_limit="100000/minute")
app = create_app(FUZZING, Answerer.from_settings(
    FUZZING, chat_model=FakeListChatModel(responses=["Iraqi intelligence", "NOT FOUND"])))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module", autouse=True)
def started_over_the_seed_story():
    ingest_paths([SEED_FILE], FUZZING, progress=False)
    with TestClient(app):
        app.state.service.answerer.store.refresh()  # collection may have read the store before the ingest
        yield
    shutil.rmtree(DATA_DIR.parent, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_schema_whatever_it_is_sent(case):
    # Schema-valid bodies may still be over a configured limit (NEWSQA_MAX_*): a 422 is then the right answer.
    excluded = [positive_data_acceptance]
    if case.method == "GET":  # a query string carries only text: "12" there is as much a string as a number
        excluded.append(negative_data_rejection)
    case.call_and_validate(excluded_checks=excluded)
