"""`newsqa bench` on inputs people get wrong: no questions, a single timing."""

import io

import pytest
from helpers import DEMO_DIR

from newsqa.errors import UsageError
from newsqa.eval.bench import _percentiles, run_bench


def test_a_single_answer_still_gets_percentiles():
    assert _percentiles([1234.0]) == "p50 1234 ms, p95 1234 ms (n=1)"


@pytest.mark.parametrize(("content", "message"), [("", "holds no questions"), ('{"q": 1}\n', "with a 'question'"),
                                                  ("not json\n", "with a 'question'")])
def test_a_questions_file_without_questions_is_a_usage_error(settings, tmp_path, content, message):
    questions = tmp_path / "questions.jsonl"
    questions.write_text(content)
    out = io.StringIO()
    with pytest.raises(UsageError, match=message):
        run_bench(settings, DEMO_DIR, questions, answers=1, out=out)
    assert out.getvalue() == ""  # refused before any work
