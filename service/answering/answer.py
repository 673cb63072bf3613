"""The one answer function every adapter calls: rewrite → retrieve → context → generate → verify → respond."""

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig

from newsqa.errors import InvalidRequest
from newsqa.service.answering import input_limits, recency
from newsqa.service.answering.calibrator import Calibrator, Signals, load
from newsqa.service.answering.candidates import answerable_by_candidates, candidates, pick
from newsqa.service.answering.context import Window, render_context, select_windows
from newsqa.service.answering.grounding import (
    Verdict,
    asks_for_kind,
    clean_answer,
    echoes_question,
    fills_slot,
    ground,
    question_coverage,
)
from newsqa.service.answering.lexical import Idf, terms
from newsqa.service.answering.llm import build_chat_model, mean_logprob, model_answers, model_calls
from newsqa.service.answering.prompts import chat_prompt, fenced, load_text
from newsqa.service.answering.retrieval import HybridRetriever, Passage
from newsqa.service.answering.schemas import (
    RELATED_PASSAGES,
    ChatRequest,
    ChatResponse,
    Citation,
    Filters,
    RefusalReason,
    Timings,
    Usage,
)
from newsqa.service.answering.snapshot import StoreView
from newsqa.service.answering.verify import Verifier
from newsqa.settings import Settings
from newsqa.store.embedding import Embedder, get_embedder

log = logging.getLogger(__name__)

# What the answer path reports on its way, for a streaming adapter: ("stage", {"stage", "passages"}) and
# ("token", {"text", "provisional"}). Called from the answering thread.
Events = Callable[[str, dict[str, Any]], None]


class Answerer:
    def __init__(self, settings: Settings, store: StoreView, embedder: Embedder,
                 chat_model: BaseChatModel | None = None, calibrator: Calibrator | None = None,
                 exhaustive: bool = False):
        """`exhaustive` (for the eval): every candidate is judged, past the coverage floor and past the first
        that stands, so each variant of the path can be replayed from the trace; the answers given stay the same."""
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self._chat_model = chat_model
        self.calibrator = calibrator or load(settings.calibrator_file)
        self.exhaustive = exhaustive
        self.retriever = HybridRetriever(embedder, settings.candidates)

    @classmethod
    def from_settings(cls, settings: Settings, chat_model: BaseChatModel | None = None,
                      exhaustive: bool = False) -> "Answerer":
        return cls(settings, StoreView(settings), get_embedder(settings), chat_model, exhaustive=exhaustive)

    @cached_property
    def chat_model(self) -> BaseChatModel:
        """Built on first use, so retrieval-only callers never load the model."""
        return self._chat_model or build_chat_model(self.settings)

    @cached_property
    def answer_chain(self) -> Runnable:
        return chat_prompt(self.settings.prompts_dir, "answer") | self.chat_model  # the message: it has usage

    @cached_property
    def verifier(self) -> Verifier:
        return Verifier(self.chat_model, self.settings.prompts_dir)

    @cached_property
    def rewrite_chain(self) -> Runnable:
        return chat_prompt(self.settings.prompts_dir, "rewrite") | self.chat_model  # the message: it has usage

    def model_answers(self) -> bool:
        """Built, loaded, not stuck, reachable: see llm.model_answers. Never builds or loads the model."""
        model = self.__dict__.get("chat_model")  # cached_property keeps it here once built
        return model is not None and model_answers(model, self.settings.answer_deadline_s)

    def warm_up(self) -> None:
        """Load the model weights now rather than on the first question."""
        try:
            if load := getattr(self.chat_model, "load", None):
                load()
        except Exception:  # a warm-up thread has nobody to tell: the log and /readyz say it
            log.exception("the chat model failed to load; answers will fail until it does")

    def search(self, question: str, filters: Filters | None = None, k: int = 10) -> list[Passage]:
        return self.retriever.search(question, self.store.current(), filters, k)

    def answer(self, request: ChatRequest, events: Events | None = None, trace: "Trace | None" = None) -> ChatResponse:
        """The answer to `request`; `events`, when given, hears the stages and the model's draft tokens; `trace`,
        when given, records what the answer path considered (for the eval)."""
        input_limits.check(request, self.settings)
        turn = _Turn(events, trace=trace)
        snapshot = self.store.current()  # one generation of the store for the whole question
        if snapshot.empty:
            return self._refusal("empty_index", turn)
        question = request.question
        if request.history and self.settings.history_turns:
            turn.stage("rewriting")
            turn.standalone = self._standalone(question, request, turn)
        question = turn.standalone or question
        if not terms(question):  # "who is he?", "???": nothing to look up, and coverage of nothing is 1.0
            log.debug("refused: %r asks about nothing in particular", question)
            return self._refusal("nothing_asked", turn)

        turn.stage("retrieving")
        t = time.perf_counter()
        idf = snapshot.lexical.idf
        passages = self.retriever.search(question, snapshot, request.filters, request.top_k or self.settings.top_k,
                                         prefer=self._named_time(question, request))
        turn.timings.retrieve_ms = _ms(t)
        turn.stage("retrieving", len(passages))
        coverage = max((question_coverage(question, p, idf) for p in passages), default=0.0)
        addressed = coverage >= self.settings.min_question_coverage
        if turn.trace is not None:
            turn.trace.coverage = coverage
        if not addressed and not self.exhaustive:
            log.debug("refused before generation: no passage addresses %r", question)
            return self._refusal("no_passage", turn, passages)

        t = time.perf_counter()
        windows = select_windows(
            question, passages, self.embedder, idf, self.settings.context_windows, self.settings.window_chars
        )
        if not windows:
            return self._refusal("no_passage", turn, passages)
        asked = question
        if request.choices:  # only the model sees the options; retrieval and grounding use the question
            template = load_text(self.settings.prompts_dir, "choices")
            asked = template.format(question=question, options=" | ".join(request.choices))
        windows, context = self._fit_windows(windows, asked)
        turn.stage("generating")
        reply = self._generate(context, asked, turn, "reply")
        turn.stage("verifying")
        found = _Found(question, passages, windows, idf, coverage)
        settled = self._settle(reply, found, request, context, turn)
        turn.timings.generate_ms = _ms(t)
        if not addressed:  # the exhaustive eval went on to see what would have come of it
            return self._refusal("no_passage", turn, passages)
        if isinstance(settled, str):
            log.debug("refused %r: model said %r (%s)", question, reply.content, settled)
            return self._refusal(settled, turn, passages)
        return self._respond(settled, turn)

    @staticmethod
    def _named_time(question: str, request: ChatRequest) -> tuple[date, date] | None:
        """The publication window the question's time words point at, unless the request set dates itself."""
        if request.filters.since or request.filters.until:
            return None
        return recency.window(question, request.as_of or date.today())

    def _settle(self, reply: AIMessage, found: "_Found", request: ChatRequest, context: str,
                turn: "_Turn") -> "_Settled | RefusalReason":
        """The first candidate answer whose calibrated confidence reaches the threshold for the target precision.

        Candidates, in order: the model's own reply, unless it echoes the question ("who killed X?" -> "X"); then
        its choice among what the passages name, which a small model gets right more often than it writes it
        (with the user's options: each other option). Each must be stated by a passage that addresses the
        question and be of the kind asked for; then the verifier judges it and the calibrator weighs that with
        the rest of what is known. None reaching it is a refusal, which lists the passages nearest the question.
        """
        threshold = self.calibrator.threshold(self.settings.target_precision)
        settled: _Settled | None = None
        stated = False  # some candidate is stated by the passages: a refusal is then "not confirmed"
        echoed = echoes_question(clean_answer(str(reply.content)), found.question, found.idf)
        for answer, origin, writer in self._candidates(reply, echoed, found, request, context, turn):
            verdict = ground(found.question, answer, found.windows, found.passages, found.idf,
                             self.settings.min_question_coverage)
            of_kind = fills_slot(found.question, verdict.answer)
            considered = turn.consider(verdict.answer, origin, verdict.reason or ("" if of_kind else "kind"))
            if verdict.refused or not (of_kind or self.exhaustive):  # exhaustive: what a kind check is worth
                continue
            stated = stated or of_kind
            verifier = self._confirm(found.question, verdict, turn, origin)
            if verifier is None:  # no verdict, which an article's text may have steered: confirms nothing
                continue
            signals = found.signals(verdict, verifier, writer, origin != "reply")
            confidence = round(self.calibrator.confidence(signals), 4)
            considered.update(signals=signals.as_dict(), confidence=confidence)
            log.debug("%s %r for %r: confidence %s", origin, verdict.answer, found.question, confidence)
            if of_kind and confidence >= threshold and settled is None:
                settled = _Settled(verdict, confidence)
                considered["given"] = True
                if not self.exhaustive:
                    break
        return settled or ("not_confirmed" if stated else "not_grounded")

    def _candidates(self, reply: AIMessage, echoed: bool, found: "_Found", request: ChatRequest, context: str,
                    turn: "_Turn") -> Iterator[tuple[str, str, float]]:
        """(answer, where it came from, mean log-probability of the tokens that wrote it), lazily: the choice
        costs a model call, made only when the reply did not settle it."""
        writer = mean_logprob(reply)
        if not echoed:
            yield str(reply.content), "reply", writer
        if request.choices:  # the model's pick stood or not: the other options, as the sources state them
            for option in (o for o in request.choices if not pick(str(reply.content), [o])):
                yield option, "option", writer
        elif chosen := self._choose(context, found, turn):
            yield chosen

    def _confirm(self, question: str, verdict: Verdict, turn: "_Turn", origin: str) -> float | None:
        """The verifier's probability that the cited quotes say the answer answers the question; None when it gave
        no verdict."""
        t = time.perf_counter()
        with model_calls():
            judgement = self.verifier.judge(question, verdict.answer, [s.quote for s in verdict.supports],
                                            [s.passage.title for s in verdict.supports])
        turn.count(f"verify {origin}", judgement.reply, t)
        return None if judgement.probability is None else round(judgement.probability, 4)

    def _choose(self, context: str, found: "_Found", turn: "_Turn") -> tuple[str, str, float] | None:
        """Choosing beats writing for a small model: what the passages name becomes the options (of the kind the
        question asks for, not what it is about); "none" is no answer."""
        question = found.question
        if not answerable_by_candidates(question):
            return None
        options = [o for o in candidates(found.windows)
                   if fills_slot(question, o) and not echoes_question(o, question, found.idf)]
        options = options[: self.settings.answer_candidates]
        if turn.trace is not None:
            turn.trace.options = options
        if not options:
            return None
        template = load_text(self.settings.prompts_dir, "choose")
        reply = self._generate(context, template.format(question=question, options=" | ".join(options)), turn,
                               "choose")
        chosen = pick(str(reply.content), options)
        log.info("chose %r from %s (model said %r)", chosen, options, reply.content)
        return (chosen, "choice", mean_logprob(reply)) if chosen else None

    def _generate(self, context: str, asked: str, turn: "_Turn", call: str) -> AIMessage:
        """The model's reply to `asked` over `context`; its tokens go to the events as a draft."""
        config = RunnableConfig(callbacks=[_Draft(turn.events)]) if turn.events else None
        t = time.perf_counter()
        with model_calls():
            reply = self.answer_chain.invoke({"passages": fenced(context), "question": asked}, config=config)
        turn.count(call, reply, t)
        return reply

    def _fit_windows(self, windows: list[Window], asked: str) -> tuple[list[Window], str]:
        """The best windows that fit the model's context beside the question (the question is never cut), and
        their rendered context."""
        room = input_limits.prompt_room(self.settings, self._template_text("answer"))
        context = render_context(windows)
        while len(windows) > 1 and input_limits.tokens_at_most(context, asked) > room:
            windows = windows[:-1]
            context = render_context(windows)
        if input_limits.tokens_at_most(context, asked) > room:
            raise InvalidRequest(("question",), "too long for the model's context")
        return windows, context

    def _template_text(self, name: str) -> str:
        return load_text(self.settings.prompts_dir, f"{name}.system") + load_text(self.settings.prompts_dir,
                                                                                 f"{name}.user")

    def _standalone(self, question: str, request: ChatRequest, turn: "_Turn") -> str | None:
        room = input_limits.prompt_room(self.settings, self._template_text("rewrite"))
        turns = input_limits.fit_history(request.history[-self.settings.history_turns:], question, room)
        if not turns:
            return None
        history = "\n".join(f"{t.role}: {t.content}" for t in turns)
        t = time.perf_counter()
        with model_calls():
            reply = self.rewrite_chain.invoke({"history": history, "question": question})
        turn.count("rewrite", reply, t)
        rewritten = str(reply.content).strip().split("\n")[0].strip()
        return rewritten or None

    def passages_only(self, request: ChatRequest) -> ChatResponse:
        """No answer: the passages that best match the question, for when the model can't be reached."""
        passages = self.search(request.question, request.filters, request.top_k or self.settings.top_k)
        citations = [_citation(n, p, p.text) for n, p in enumerate(passages, 1)]
        return ChatResponse(answer=load_text(self.settings.prompts_dir, "passages_only"), refused=True,
                            refusal_reason="model_unavailable", citations=citations)

    def _respond(self, settled: "_Settled", turn: "_Turn") -> ChatResponse:
        citations = [_citation(n, s.passage, s.quote) for n, s in enumerate(settled.verdict.supports, 1)]
        markers = "".join(f"[{c.n}]" for c in citations)
        return ChatResponse(answer=f"{settled.verdict.answer} {markers}", refused=False, citations=citations,
                            confidence=settled.confidence, **turn.finish())

    def _refusal(self, reason: RefusalReason, turn: "_Turn", passages: Sequence[Passage] = ()) -> ChatResponse:
        """No answer; the passages searched, nearest first, become `related` (they support nothing)."""
        text = load_text(self.settings.prompts_dir, "empty_index" if reason == "empty_index" else "refusal")
        return ChatResponse(answer=text, refused=True, refusal_reason=reason, related=_related(passages),
                            **turn.finish())


@dataclass(frozen=True)
class _Settled:
    """An answer that stands: what the passages say, and its calibrated confidence."""

    verdict: Verdict
    confidence: float


@dataclass(frozen=True)
class _Found:
    """What retrieval found for the question: the passages, the windows the model reads, and how well the best
    passage covers the question."""

    question: str
    passages: list[Passage]
    windows: list[Window]
    idf: Idf
    coverage: float

    def signals(self, verdict: Verdict, verifier: float, writer: float, chosen: bool) -> Signals:
        ranks = {p.chunk_id: n for n, p in enumerate(self.passages, 1)}
        return Signals(
            verifier=verifier, writer=writer, chosen=chosen, coverage=self.coverage,
            support_coverage=max(s.coverage for s in verdict.supports), supports=len(verdict.supports),
            support_rank=min(ranks.get(s.passage.chunk_id, len(ranks) + 1) for s in verdict.supports),
            kind_asked=asks_for_kind(self.question))


@dataclass
class Trace:
    """What one answer considered, for the eval: each candidate (where it came from, why it fell, its signals and
    confidence, whether it was given), the options offered for the choice, and each model call."""

    coverage: float | None = None
    options: list[str] = field(default_factory=list)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Turn:
    """What one answer records on its way: when it started, its timings and token usage, the rewritten question,
    and, for the eval, its trace."""

    events: Events | None = None
    started: float = field(default_factory=time.perf_counter)
    timings: Timings = field(default_factory=Timings)
    usage: Usage = field(default_factory=Usage)
    standalone: str | None = None
    trace: Trace | None = None

    def stage(self, name: str, passages: int | None = None) -> None:
        if self.events:
            self.events("stage", {"stage": name, "passages": passages})

    def count(self, call: str, reply: BaseMessage, started: float) -> None:
        """A model call's tokens into the usage (and, traced, its kind, time, and prompt tokens: all of them, and
        those the backend took from its cache)."""
        tokens = reply.usage_metadata if isinstance(reply, AIMessage) and reply.usage_metadata else None
        if tokens:
            self.usage.prompt_tokens += tokens["input_tokens"]
            self.usage.completion_tokens += tokens["output_tokens"]
        if self.trace is not None:
            cached = tokens.get("input_token_details", {}).get("cache_read") if tokens else None
            self.trace.calls.append({"call": call, "ms": _ms(started),
                                     "prompt_tokens": tokens["input_tokens"] if tokens else None,
                                     "cached_tokens": cached})

    def consider(self, answer: str, origin: str, fell: str) -> dict[str, Any]:
        """A candidate into the trace; the dict to add its signals and confidence to (a throwaway untraced)."""
        considered: dict[str, Any] = {"answer": answer, "origin": origin, "fell": fell}
        if self.trace is not None:
            self.trace.candidates.append(considered)
        return considered

    def finish(self) -> dict[str, Any]:
        self.timings.total_ms = _ms(self.started)
        return {"timings": self.timings, "usage": self.usage, "standalone_question": self.standalone}


def _citation(n: int, passage: Passage, quote: str) -> Citation:
    meta = passage.meta
    return Citation(n=n, article_id=passage.article_id, chunk_id=passage.chunk_id, title=passage.title,
                    source=meta.source, url=meta.url, published_at=meta.published_at, quote=quote)


def _related(passages: Sequence[Passage]) -> list[Citation]:
    """The nearest passage of each of the first RELATED_PASSAGES articles: three places to look, not one story
    thrice."""
    nearest: dict[str, Passage] = {}
    for passage in passages:
        nearest.setdefault(passage.article_id, passage)
    return [_citation(n, p, p.text) for n, p in enumerate(list(nearest.values())[:RELATED_PASSAGES], 1)]


class _Draft(BaseCallbackHandler):
    """Passes the model's tokens on as they come: a provisional draft, until grounding has judged it."""

    def __init__(self, events: Events) -> None:
        self.events = events

    def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
        if isinstance(token, str) and token:
            self.events("token", {"text": token, "provisional": True})


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)
