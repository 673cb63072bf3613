"""The eval runner end to end, with a fake answer function in place of the model and index."""

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from newsqa.errors import UsageError
from newsqa.eval.run import run_eval
from newsqa.service.answering.schemas import ChatResponse, Citation, Timings
from newsqa.settings import Settings

QUESTIONS = [
    {
        "id": "q1",
        "question": "Serena Williams played which tournament?",
        "answer": "US Open",
        "question_type": "news_quiz_mc",
        "choices": ["Australian Open", "US Open", "French Open", "Wimbledon"],
        "answer_index": 1,
        "evidence": [
            {"article_id": "a1", "fact": "Williams is playing the US Open.", "match": "url_of_evidence_link"}
        ],
    },
    {
        "id": "q2",
        "question": "When do student loan payments restart?",
        "answer": "September",
        "question_type": "news_quiz_mc",
        "choices": ["September", "October", "November", "December"],
        "answer_index": 0,
        "evidence": [
            {"article_id": "a2", "fact": "Payments restart in September.", "match": "url_of_evidence_link"},
            {"article_id": "gone", "fact": "x", "match": "evidence_sentence_in_article"},
        ],
    },
    {
        "id": "q3_null",
        "question": "Netflix lost how many subscribers?",
        "answer": "insufficient information",
        "question_type": "null_constructed",
        "choices": ["1", "2", "3", "4"],
        "evidence": [],
    },
]
ARTICLES = [
    {"id": "a1", "title": "Williams at the US Open", "body": "Williams is playing the US Open this week."},
    {"id": "a2", "title": "Student loans", "body": "Payments restart in September, officials said."},
    {"id": "a3", "title": "Weather", "body": "Rain is expected."},
]
GOOD = {
    "q1": ("She played the US Open.", False, "a1", "Williams is playing the US Open this week."),
    "q2": ("In September.", False, "a2", "Payments restart in September, officials said."),
    "q3_null": ("I could not find that in the articles.", True, None, None),
}
BAD = {
    "q1": ("Wimbledon", False, "a3", "Rain is expected."),
    "q2": ("October", False, "a3", "Rain is expected."),
    "q3_null": ("640,000", False, "a3", "Rain is expected."),
}


class FakeBackend:
    """Answers from a table; search ranks the gold article first (good) or last (bad)."""

    def __init__(self, table=GOOD, crash_on: str | None = None, fail_on: str | None = None):
        self.table, self.crash_on, self.fail_on = table, crash_on, fail_on
        self.asked: list[str] = []
        self.choices: list[list[str] | None] = []

    def _id(self, question: str) -> str:
        return next(q["id"] for q in QUESTIONS if question.startswith(q["question"]))

    def search(self, question, filters=None, k=10):
        qid = self._id(question)
        gold = [e["article_id"] for e in next(q for q in QUESTIONS if q["id"] == qid)["evidence"]]
        ranked = gold + ["a3"] if self.table is GOOD else ["a3"] * 3
        return [SimpleNamespace(article_id=a, chunk_id=f"{a}:0", text="", score=1.0) for a in ranked]

    def answer(self, req, *, trace=None):
        qid = self._id(req.question)
        if qid == self.crash_on:
            raise KeyboardInterrupt  # the user pressing Ctrl-C mid-run
        if qid == self.fail_on:
            raise RuntimeError("model server went away")
        self.asked.append(req.question)
        self.choices.append(req.choices)
        answer, refused, article, quote = self.table[qid]
        if trace is not None:  # what the answer path considered: here its one candidate, given or not
            trace.candidates.append({"answer": answer, "origin": "reply", "fell": "", "given": not refused,
                                     "confidence": 0.3 if refused else 0.9})
        citations = (
            []
            if refused
            else [
                Citation(
                    n=1,
                    article_id=article,
                    chunk_id=f"{article}:0",
                    title="t",
                    source=None,
                    url=None,
                    published_at=None,
                    quote=quote,
                )
            ]
        )
        return ChatResponse(
            answer=answer,
            refused=refused,
            refusal_reason="no_passage" if refused else None,
            citations=citations,
            timings=Timings(retrieve_ms=10, generate_ms=100, total_ms=110),
        )


@pytest.fixture
def files(tmp_path):
    q = tmp_path / "questions.jsonl"
    q.write_text("".join(json.dumps(x) + "\n" for x in QUESTIONS))
    a = tmp_path / "articles.jsonl"
    a.write_text("".join(json.dumps(x) + "\n" for x in ARTICLES))
    return q, a, tmp_path / "out"


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=tmp_path / "data")


def run(files, settings, backend, **kwargs):
    q, a, out = files
    return run_eval(settings=settings, questions=q, articles=a, out=kwargs.pop("out", out), backend=backend, **kwargs)


def load_report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def test_writes_json_markdown_and_html_reports(files, settings):
    assert run(files, settings, FakeBackend()) == 0
    out = files[2]
    report = load_report(out)
    agg = report["aggregates"]
    assert [r["id"] for r in report["rows"]] == ["q1", "q2", "q3_null"]
    assert agg["accuracy"] == 1.0
    assert agg["retrieval"]["hit@1"] == 1.0 and agg["retrieval"]["n"] == 2
    assert agg["answer"] == {
        "n": 2,
        "exact_match": 0.0,
        "f1": pytest.approx(agg["answer"]["f1"]),
        "contains": 1.0,
        "answered_wrong": 0.0,
    }
    assert agg["refusal"]["recall"] == 1.0 and agg["refusal"]["hallucination_rate"] == 0.0
    assert agg["citations"] == {"n": 2, "precision": 1.0, "recall": 1.0}
    assert agg["latency_ms"]["total"]["p50"] == 110
    # the two right answers at 0.9 come first, the refused guess at the unanswerable one last
    assert agg["selective"]["aurc"] == pytest.approx((0 + 0 + 1 / 3) / 3)
    assert agg["selective"]["coverage@90%"] == 1.0 and agg["given"] == {"precision": 1.0, "coverage": 1.0}
    assert agg["selective"]["reliability"][3] == {"from": 0.8, "n": 2, "right": 1.0}
    assert agg["oracle"] == 1.0
    # the evidence article missing from the articles file is flagged, on the row and in the report
    assert report["flags"] == {"q2": ["evidence article gone missing from articles"]}
    assert report["rows"][1]["flags"] == report["flags"]["q2"]
    assert report["meta"]["mode"] == "open" and "settings" in report["meta"]
    row = report["rows"][0]
    assert row["gold"]["answers"] == ["US Open"] and row["answer"] == "She played the US Open."
    assert row["citations"][0]["supports"] is True and row["timings"]["total_ms"] == 110

    md = (out / "report.md").read_text()
    assert "| Retrieval hit@5 | 1.000 |" in md and "evidence article gone missing" in md
    html = (out / "report.html").read_text()
    assert html.count("<svg") == 3 and "Accuracy per question type" in html


def test_without_matplotlib_the_reports_are_written_and_say_what_to_install(files, settings, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # an import of it raises ImportError
    assert run(files, settings, FakeBackend()) == 0
    out = files[2]
    assert load_report(out)["aggregates"]["accuracy"] == 1.0 and (out / "report.md").exists()
    html = (out / "report.html").read_text()
    assert "<svg" not in html and "pip install &#x27;newsqa[eval]&#x27;" in html
    assert "matplotlib is not installed (pip install 'newsqa[eval]')" in capsys.readouterr().err


def test_the_report_counts_refusals_by_reason(files, settings):
    assert run(files, settings, FakeBackend()) == 0
    report = load_report(files[2])
    assert report["aggregates"]["refusal_reasons"] == {"no_passage": 1}
    assert [r["refusal_reason"] for r in report["rows"]] == [None, None, "no_passage"]
    assert "| Refusals by reason | no_passage 1 |" in (files[2] / "report.md").read_text()


def test_wrong_answers_hallucinations_and_bad_citations_are_scored(files, settings):
    assert run(files, settings, FakeBackend(BAD)) == 0
    report = load_report(files[2])
    agg = report["aggregates"]
    assert agg["accuracy"] == 0.0
    assert agg["retrieval"]["hit@10"] == 0.0 and agg["retrieval"]["mrr"] == 0.0
    assert agg["refusal"]["hallucination_rate"] == 1.0 and agg["refusal"]["precision"] is None
    assert agg["citations"]["precision"] == 0.0
    md = (files[2] / "report.md").read_text()
    assert "| q3_null |" in md and "## Gold article not in the top 10" in md


def test_choices_mode_offers_the_options_and_scores_the_pick(files, settings):
    backend = FakeBackend({**GOOD, "q1": ("B", False, "a1", "Williams is playing the US Open this week.")})
    assert run(files, settings, backend, mode="choices") == 0
    assert backend.choices[0] == ["Australian Open", "US Open", "French Open", "Wimbledon"]
    rows = load_report(files[2])["rows"]
    assert rows[0]["scores"]["choice"] == 1 and rows[0]["scores"]["correct"] is True


def test_an_interrupted_run_resumes_without_redoing_finished_questions(files, settings):
    with pytest.raises(KeyboardInterrupt):
        run(files, settings, FakeBackend(crash_on="q2"))
    assert len((files[2] / "rows.jsonl").read_text().splitlines()) == 1
    assert not (files[2] / "report.json").exists()

    backend = FakeBackend()
    assert run(files, settings, backend, resume=True) == 0
    assert len(backend.asked) == 2  # q1 was not asked again
    assert [r["id"] for r in load_report(files[2])["rows"]] == ["q1", "q2", "q3_null"]


def test_a_failed_question_is_recorded_and_retried_on_resume(files, settings):
    assert run(files, settings, FakeBackend(fail_on="q2")) == 0
    report = load_report(files[2])
    assert report["aggregates"]["n_errors"] == 1
    assert report["rows"][1]["error"] == "RuntimeError: model server went away"

    backend = FakeBackend()
    run(files, settings, backend, resume=True)
    assert len(backend.asked) == 1 and load_report(files[2])["aggregates"]["n_errors"] == 0


def test_resume_refuses_an_out_dir_of_a_different_run(files, settings):
    run(files, settings, FakeBackend())
    with pytest.raises(UsageError, match="drop --resume"):
        run(files, settings, FakeBackend(), resume=True, mode="choices")


@pytest.mark.parametrize("content", ["{not json", '{"rows": []}', "[1, 2]", '{"aggregates": 3}'])
def test_a_malformed_baseline_is_a_usage_error_naming_the_file(files, settings, tmp_path, content):
    baseline = tmp_path / "broken-report.json"
    baseline.write_text(content)
    with pytest.raises(UsageError, match="broken-report.json is not a report.json"):
        run(files, settings, FakeBackend(), baseline=baseline)


def test_baseline_gate_fails_on_a_regression_and_prints_deltas(files, settings, tmp_path, capsys):
    run(files, settings, FakeBackend(), out=tmp_path / "base")
    baseline = tmp_path / "base" / "report.json"
    assert run(files, settings, FakeBackend(), baseline=baseline) == 0
    capsys.readouterr()

    assert run(files, settings, FakeBackend(BAD), baseline=baseline) == 1
    captured = capsys.readouterr()
    assert "FAIL  retrieval.hit@5" in captured.out and "(-1.000)" in captured.out
    assert "FAILED: accuracy dropped" in captured.err


def test_retrieval_only_run_with_a_floor(files, settings):
    backend = FakeBackend()
    assert run(files, settings, backend, retrieval_only=True, min_hit_at_5=0.9) == 0
    assert backend.asked == []  # no generation
    report = load_report(files[2])
    assert "answer" not in report["aggregates"] and report["rows"][0]["answer"] is None
    assert run(files, settings, FakeBackend(BAD), retrieval_only=True, min_hit_at_5=0.5) == 1


def test_limit_and_bad_input_lines(files, settings, capsys):
    q, a, out = files
    q.write_text(q.read_text() + "{oops\n")
    assert run(files, settings, FakeBackend(), limit=2) == 0
    report = load_report(out)
    assert len(report["rows"]) == 2
    assert report["input_errors"] == [
        f"{q}:4: not valid JSON (Expecting property name enclosed in double quotes)"
    ]
    assert f"skipped {q}:4" in capsys.readouterr().err
