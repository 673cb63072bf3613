"""Gold questions and articles from JSONL, in either supported format, with line-numbered error reporting.

Formats are documented in eval/README.md. A bad line never stops a run and is never dropped silently:
it comes back as a LineError for the caller to print and put in the report.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from newsqa.eval.measures import normalize
from newsqa.service.answering.schemas import Turn
from newsqa.settings import Settings

# Dev-set evidence whose `match` starts with this is a best-effort guess, not gold (see eval/README.md).
HEURISTIC_MATCH_PREFIX = "heuristic"


@dataclass(frozen=True)
class LineError:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class Evidence(BaseModel):
    article_id: str | None = None
    text: str | None = None  # a fact or quote from the article
    gold: bool = True


class GoldQuestion(BaseModel):
    id: str
    question: str
    answers: list[str]  # accepted answers; empty when unanswerable
    unanswerable: bool
    question_type: str
    choices: list[str] = Field(default_factory=list)
    answer_index: int | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    history: list[Turn] = Field(default_factory=list)  # earlier turns, for a follow-up question
    as_of: date | None = None  # when it was asked: "this week" is read against it
    source: str  # "path:line", so a reader of the report can find the gold line

    def evidence_ids(self, include_heuristic: bool = False) -> set[str]:
        return {e.article_id for e in self.evidence if e.article_id and (e.gold or include_heuristic)}

    @property
    def evidence_texts(self) -> list[str]:
        return [e.text for e in self.evidence if e.gold and e.text]


class _RealtimeQAEvidence(BaseModel):
    article_id: str
    fact: str = ""
    match: str


class _RealtimeQALine(BaseModel):
    """The shared dev set (../shared/eval/realtimeqa-dev/questions.jsonl)."""

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    answer: str
    answer_normalized: str | None = None
    question_type: str
    choices: list[str] = Field(default_factory=list)
    answer_index: int | None = None
    evidence: list[_RealtimeQAEvidence] = Field(default_factory=list)
    question_date: str | None = None  # "2022/08/04"


class _NewsQALine(BaseModel):
    """The project's own gold format (eval/gold/*.jsonl); unknown keys are errors so typos surface."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    question: str = Field(min_length=1)
    answers: list[str] = Field(default_factory=list)
    unanswerable: bool = False
    question_type: str | None = None
    article_ids: list[str] = Field(default_factory=list)
    quotes: list[str] = Field(default_factory=list)
    choices: list[str] = Field(default_factory=list)
    answer_index: int | None = None
    history: list[Turn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> "_NewsQALine":
        if self.unanswerable and self.answers:
            raise ValueError("an unanswerable question cannot have accepted answers")
        if not self.unanswerable and not any(a.strip() for a in self.answers):
            raise ValueError("an answerable question needs at least one non-empty accepted answer")
        if self.answer_index is not None and not 0 <= self.answer_index < len(self.choices):
            raise ValueError("answer_index does not point into choices")
        return self


def _from_realtimeqa(obj: dict[str, Any], source: str) -> GoldQuestion:
    line = _RealtimeQALine.model_validate(obj)
    unanswerable = line.question_type == "null_constructed"
    answers = (
        [] if unanswerable else list(dict.fromkeys(a for a in (line.answer, line.answer_normalized) if a))
    )
    return GoldQuestion(
        id=line.id,
        question=line.question,
        answers=answers,
        unanswerable=unanswerable,
        question_type=line.question_type,
        choices=line.choices,
        answer_index=line.answer_index,
        evidence=[
            Evidence(
                article_id=e.article_id, text=e.fact, gold=not e.match.startswith(HEURISTIC_MATCH_PREFIX)
            )
            for e in line.evidence
        ],
        as_of=datetime.strptime(line.question_date, "%Y/%m/%d").date() if line.question_date else None,
        source=source,
    )


def _from_newsqa(obj: dict[str, Any], source: str, default_id: str) -> GoldQuestion:
    line = _NewsQALine.model_validate(obj)
    return GoldQuestion(
        id=line.id or default_id,
        question=line.question,
        answers=line.answers,
        unanswerable=line.unanswerable,
        question_type=line.question_type or ("unanswerable" if line.unanswerable else "answerable"),
        choices=line.choices,
        answer_index=line.answer_index,
        evidence=[Evidence(article_id=a) for a in line.article_ids] + [Evidence(text=q) for q in line.quotes],
        history=line.history,
        source=source,
    )


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | LineError]]:
    with path.open(encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as e:
                yield n, LineError(str(path), n, f"not valid JSON ({e.msg})")
                continue
            yield n, obj if isinstance(obj, dict) else LineError(str(path), n, "not a JSON object")


def _validation_message(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, err['loc'])) or 'line'}: {err['msg']}" for err in e.errors())


def load_questions(path: Path) -> tuple[list[GoldQuestion], list[LineError]]:
    """Questions in file order. Each line is read as the dev-set format if it has `answer`, else as ours."""
    questions: list[GoldQuestion] = []
    errors: list[LineError] = []
    seen: set[str] = set()
    for n, obj in _json_lines(path):
        if isinstance(obj, LineError):
            errors.append(obj)
            continue
        source = f"{path}:{n}"
        try:
            if "answer" in obj:
                q = _from_realtimeqa(obj, source)
            else:
                q = _from_newsqa(obj, source, default_id=f"{path.stem}-{n}")
        except ValidationError as e:
            errors.append(LineError(str(path), n, _validation_message(e)))
            continue
        if q.id in seen:  # every row is scored; resume and the report key rows by id, so it gets its own
            q = q.model_copy(update={"id": f"{q.id}@{n}"})
        seen.add(q.id)
        questions.append(q)
    return questions, errors


class ArticleText(BaseModel):
    id: str  # the id the index stores (ingest's Article.key, scoped by source: "cnn.com:a1")
    input_id: str | None = None  # the id the articles file gives it ("a1"), which gold evidence may name
    text: str


def load_articles(path: Path, settings: Settings) -> tuple[list[ArticleText], list[str]]:
    """Article ids and text through the same loaders the index is built with, so ids agree with the index."""
    from newsqa.ingest.loaders import load_paths
    from newsqa.store.models import Article

    articles: list[ArticleText] = []
    errors: list[str] = []
    for item in load_paths([path], settings):
        if isinstance(item, Article):
            articles.append(ArticleText(id=item.key, input_id=item.id, text=f"{item.title}\n{item.body}"))
        else:
            errors.append(str(item))  # a LoadError names file and line
    return articles, errors


def resolve_evidence(questions: list[GoldQuestion], articles: list[ArticleText]) -> dict[str, list[str]]:
    """Fill in the article of quote-only evidence, name each evidence article by its index key (the articles
    file's "a1" is "cnn.com:a1" in the index), and flag evidence the articles file cannot back.

    Returns {question id: [problem, ...]} for the report. Missing evidence articles are dropped from a
    question's gold set, so retrieval metrics measure the retriever rather than gaps in the data.
    """
    keys: dict[str, list[str]] = {}  # an evidence id, as the index key or the file's id → index keys
    for a in articles:
        for name in {a.id, a.input_id or a.id}:
            keys.setdefault(name, []).append(a.id)
    normalized = [(a.id, f" {normalize(a.text)} ") for a in articles]
    flags: dict[str, list[str]] = {}
    for q in questions:
        kept: list[Evidence] = []
        for e in q.evidence:
            if e.article_id is None:
                needle = f" {normalize(e.text or '')} "
                found = [aid for aid, text in normalized if needle.strip() and needle in text]
                if not found:
                    flags.setdefault(q.id, []).append(f"quote not found in any article: {e.text!r}")
                kept.append(e)  # the quote still scores citations
                kept += [Evidence(article_id=aid, gold=e.gold) for aid in found]
            elif e.article_id not in keys:
                if e.gold:
                    flags.setdefault(q.id, []).append(
                        f"evidence article {e.article_id} missing from articles"
                    )
                kept.append(e.model_copy(update={"article_id": None}))
            else:
                kept += [e.model_copy(update={"article_id": key}) for key in keys[e.article_id]]
        q.evidence = kept
    return flags
