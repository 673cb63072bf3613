"""Request and response shapes shared by every adapter (HTTP, Slack, CLI, eval)."""

import re
import unicodedata
from datetime import date
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from newsqa.store.models import source_key

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class Turn(BaseModel):
    role: Literal["user", "assistant"]
    content: str = Field(min_length=1)


class Filters(BaseModel):
    sources: list[str] | None = Field(None, description="Only articles from these sources (e.g. 'newarab.com').")
    since: date | None = Field(None, description="Only articles published on or after this date.")
    until: date | None = Field(None, description="Only articles published on or before this date.")

    @field_validator("sources")
    @classmethod
    def _as_stored(cls, sources: list[str] | None) -> list[str] | None:
        """Sources as ingest stores them ('https://www.x.com/' is 'x.com'); one that names no site is an error."""
        if sources is None:
            return None
        keys = [source_key(s) for s in sources]
        if bad := [s for s, key in zip(sources, keys, strict=True) if key is None]:
            raise ValueError(f"{bad[0]!r} names no source; expected a site such as newarab.com")
        return sorted({key for key in keys if key})

    @field_validator("since", "until", mode="before")
    @classmethod
    def _iso_date(cls, value: object) -> object:
        """A date is written YYYY-MM-DD; a bare number, even as text (a query string's "0"), would otherwise
        pass as seconds since 1970."""
        iso = isinstance(value, date) or isinstance(value, str) and _ISO_DATE.fullmatch(value)
        if value is not None and not iso:
            raise ValueError("expected a date as YYYY-MM-DD")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> "Filters":
        if self.since and self.until and self.since > self.until:
            raise ValueError(f"since ({self.since}) is after until ({self.until})")
        return self


class ChatRequest(BaseModel):
    # Lengths and counts are limited by settings (NEWSQA_MAX_*), checked by the answer path: 422 naming the field.
    question: str = Field(min_length=1)
    history: list[Turn] = Field(default_factory=list)
    filters: Filters = Field(default_factory=Filters)
    top_k: int | None = Field(None, ge=1, le=50)
    choices: list[str] | None = Field(
        None, min_length=2, description="Options to pick the answer from (multiple choice)."
    )
    as_of: date | None = Field(
        None, description="The date times in the question ('this week', 'yesterday') are read against; default "
                          "today. Articles published in the time the question names rank higher.")

    @field_validator("as_of", mode="before")
    @classmethod
    def _iso_as_of(cls, value: object) -> object:
        return Filters._iso_date(value)

    @field_validator("question")
    @classmethod
    def _visible(cls, question: str) -> str:
        """Invisible format characters (zero-width spaces, BOMs) are dropped; nothing left means blank."""
        question = "".join(ch for ch in question if unicodedata.category(ch) != "Cf").strip()
        if not question:
            raise ValueError("question is blank")
        return question


class Citation(BaseModel):
    n: int
    article_id: str
    chunk_id: str
    title: str
    source: str | None
    url: str | None
    published_at: str | None
    quote: str


# Passages a refusal lists as related: a few places to look, from different articles.
RELATED_PASSAGES = 3


class Timings(BaseModel):
    retrieve_ms: float = 0.0
    generate_ms: float = 0.0
    total_ms: float = 0.0


class Usage(BaseModel):
    """Tokens the model read and wrote for this answer, over all its calls: on a CPU, prompt tokens are the cost."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


# Why an answer was refused: no articles at all; the question names nothing to look up; no passage addresses
# it; the model's answer is not stated by a passage that does; the passages state it but the verifier doesn't
# confirm it answers this question; or the model is unavailable and the citations are only the best-matching
# passages (NEWSQA_FALLBACK_PASSAGES).
RefusalReason = Literal["empty_index", "nothing_asked", "no_passage", "not_grounded", "not_confirmed",
                        "model_unavailable"]


class ChatResponse(BaseModel):
    answer: str
    refused: bool
    refusal_reason: RefusalReason | None = None
    citations: list[Citation] = Field(
        default_factory=list, description="The passages that state the answer; empty on a refusal, except "
                                          "model_unavailable's best-matching passages.")
    related: list[Citation] = Field(
        default_factory=list, description=f"On a refusal after a search, the passages nearest the question (at "
                                          f"most {RELATED_PASSAGES}, one per article) for the reader to look "
                                          f"through: they state no answer. Empty otherwise.")
    confidence: float | None = Field(
        None, description="The calibrated probability, 0-1, that the answer is right (of answers given at "
                          "confidence c, about a share c were right on the validation set); null for refusals.")
    timings: Timings = Field(default_factory=Timings)
    usage: Usage = Field(default_factory=Usage)
    standalone_question: str | None = Field(
        None, description="The question actually searched, when a follow-up was rewritten using history."
    )
