"""The whole read path with the real local model (Qwen2.5-Coder-1.5B GGUF via xllamacpp) on the seed story."""

import re

import pytest
from conftest import SEED_SOURCE, SEED_TITLE

from newsqa.service.answer import Answerer
from newsqa.service.schemas import ChatRequest


@pytest.fixture(scope="module")
def answerer(seed_settings) -> Answerer:
    return Answerer.from_settings(seed_settings)


def assert_grounded(response, supporting: str) -> None:
    assert not response.refused
    numbers = {int(n) for n in re.findall(r"\[(\d+)\]", response.answer)}
    assert numbers and numbers == {c.n for c in response.citations}
    assert any(supporting in c.quote for c in response.citations), [c.quote for c in response.citations]
    for c in response.citations:
        assert (c.title, c.source) == (SEED_TITLE, SEED_SOURCE)


def test_who_killed_al_rufayi(answerer):
    response = answerer.answer(ChatRequest(question="Who killed al-Rufayi?"))
    assert "Iraqi intelligence" in response.answer
    assert "coalition" in response.answer
    assert_grounded(response, "Iraqi intelligence")


def test_how_many_civilians_were_killed(answerer):
    response = answerer.answer(ChatRequest(question="How many civilians were killed in coastal Syria?"))
    assert "1,383" in response.answer
    assert_grounded(response, "1,383 civilians")
    assert 0.5 < response.confidence <= 1  # the figure is copied from the passage, not guessed
    # what the answer cost: the prompt held the passages (far more than the question), the reply a few tokens
    assert response.usage.prompt_tokens > 100 and 0 < response.usage.completion_tokens <= 48


def test_population_of_baghdad_is_refused(answerer):
    response = answerer.answer(ChatRequest(question="What is the population of Baghdad?"))
    assert response.refused
    assert response.citations == []
    assert "don't cover" in response.answer
