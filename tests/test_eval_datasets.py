import json
from pathlib import Path

from helpers import DEMO_DIR, make_settings

from newsqa.eval.datasets import load_articles, load_questions, resolve_evidence

GOLD = Path(__file__).resolve().parent.parent / "eval" / "gold"
SETTINGS = make_settings(Path("data"))  # the loaders' limits only: nothing is written

DEV_LINE = {
    "id": "rtqa_1",
    "question": "Serena Williams played which tournament?",
    "answer": "US Open",
    "answer_normalized": "US Open",
    "question_type": "news_quiz_mc",
    "choices": ["Australian Open", "US Open", "French Open", "Wimbledon"],
    "answer_index": 1,
    "evidence": [
        {"article_id": "a1", "fact": "Williams played the US Open.", "match": "url_of_evidence_link"},
        {
            "article_id": "a2",
            "fact": "US Open crowds",
            "match": "heuristic_answer_and_question_terms_in_article",
        },
    ],
}
NULL_LINE = {
    "id": "rtqa_2_null",
    "question": "Netflix lost how many subscribers?",
    "answer": "insufficient information",
    "question_type": "null_constructed",
    "choices": ["1", "2", "3", "4"],
    "original_answer": "4",
    "evidence": [],
}


def write_jsonl(path: Path, lines: list) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


def test_reads_the_dev_set_format(tmp_path):
    questions, errors = load_questions(write_jsonl(tmp_path / "q.jsonl", [DEV_LINE, NULL_LINE]))
    assert errors == []
    q, null = questions
    assert q.answers == ["US Open"] and not q.unanswerable and q.answer_index == 1
    assert q.evidence_ids() == {"a1"}  # heuristic matches are not gold
    assert q.evidence_ids(include_heuristic=True) == {"a1", "a2"}
    assert null.unanswerable and null.answers == [] and null.question_type == "null_constructed"


def test_reads_the_project_format_and_defaults_ids_from_line_numbers(tmp_path):
    lines = [
        {"question": "Who visited?", "answers": ["Shaibani"], "quotes": ["Shaibani visited"]},
        {"question": "Which treaty was signed?", "unanswerable": True},
    ]
    questions, errors = load_questions(write_jsonl(tmp_path / "mine.jsonl", lines))
    assert errors == []
    assert [q.id for q in questions] == ["mine-1", "mine-2"]
    assert questions[1].unanswerable and questions[1].question_type == "unanswerable"
    assert questions[0].evidence_texts == ["Shaibani visited"]


def test_bad_lines_are_reported_with_file_and_line_and_skipped(tmp_path):
    lines = [
        DEV_LINE,
        "{not json",
        {"question": "Missing answers?"},
        {"question": "Typo?", "answer_s": ["x"], "answers": ["x"]},
        {"question": "Both?", "answers": ["x"], "unanswerable": True},
        "[1, 2]",
        DEV_LINE,  # a repeated id: scored as a row of its own
        NULL_LINE,
    ]
    path = write_jsonl(tmp_path / "q.jsonl", lines)
    questions, errors = load_questions(path)
    assert [q.id for q in questions] == ["rtqa_1", "rtqa_1@7", "rtqa_2_null"]
    assert [e.line for e in errors] == [2, 3, 4, 5, 6]
    assert all(str(e).startswith(f"{path}:") for e in errors)
    assert "answer_s" in errors[2].message


def test_missing_evidence_articles_and_unfound_quotes_are_flagged(tmp_path):
    articles_path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {
                "id": "a1",
                "title": "Williams at the US Open",
                "body": "Williams played the U.S. Open this week.",
            },
            "{broken",
        ],
    )
    articles, article_errors = load_articles(articles_path, SETTINGS)
    assert [a.id for a in articles] == ["a1"]
    assert len(article_errors) == 1 and f"{articles_path}:2" in article_errors[0]

    mine = {
        "id": "m1",
        "question": "Where?",
        "answers": ["US Open"],
        "quotes": ["played the US Open", "not there"],
    }
    questions, _ = load_questions(write_jsonl(tmp_path / "q.jsonl", [DEV_LINE, mine]))
    flags = resolve_evidence(questions, articles)
    # a2 is missing too, but it is only heuristic evidence, so nothing to flag for rtqa_1
    assert flags == {"m1": ["quote not found in any article: 'not there'"]}
    assert questions[1].evidence_ids() == {"a1"}  # the quote located its article
    assert questions[0].evidence_ids() == {"a1"}


def test_an_evidence_article_missing_from_the_articles_is_flagged(tmp_path):
    articles, _ = load_articles(
        write_jsonl(tmp_path / "a.jsonl", [{"id": "other", "title": "T", "body": "B"}]), SETTINGS
    )
    questions, _ = load_questions(write_jsonl(tmp_path / "q.jsonl", [DEV_LINE]))
    flags = resolve_evidence(questions, articles)
    assert flags == {"rtqa_1": ["evidence article a1 missing from articles"]}
    assert questions[0].evidence_ids() == set()  # so retrieval is not blamed for the data gap


def test_the_shipped_seed_gold_set_is_valid():
    questions, errors = load_questions(GOLD / "seed.jsonl")
    assert errors == []
    assert len(questions) >= 15
    assert sum(q.unanswerable for q in questions) >= 4
    assert all(q.evidence_texts for q in questions if not q.unanswerable)


def test_the_demo_gold_set_is_valid_and_every_quote_is_in_the_demo_corpus():
    questions, errors = load_questions(GOLD / "demo.jsonl")
    assert errors == []
    assert len(questions) >= 60 and sum(q.unanswerable for q in questions) >= 15
    assert sum(bool(q.history) for q in questions) >= 5  # follow-ups that need the conversation
    articles, article_errors = load_articles(DEMO_DIR, SETTINGS)
    assert article_errors == []
    assert resolve_evidence(questions, articles) == {}


def test_evidence_naming_the_files_id_is_matched_to_the_index_key_scoped_by_source(tmp_path):
    articles, _ = load_articles(write_jsonl(tmp_path / "a.jsonl", [
        {"id": "a1", "source": "cnn.com", "title": "Williams at the US Open", "body": "Williams played the U.S. Open."},
        {"id": "a1", "source": "usatoday.com", "title": "Open Draw", "body": "The draw was made on Thursday."},
    ]), SETTINGS)
    assert [a.id for a in articles] == ["cnn.com:a1", "usatoday.com:a1"]  # what retrieval returns
    questions, _ = load_questions(write_jsonl(tmp_path / "q.jsonl", [DEV_LINE]))
    assert resolve_evidence(questions, articles) == {}
    # the file's "a1" names both (the dev set's ids are unique, so there it names one); retrieval is scored on keys
    assert questions[0].evidence_ids() == {"cnn.com:a1", "usatoday.com:a1"}
