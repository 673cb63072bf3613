"""The one answer function every adapter calls: rewrite → retrieve → context → generate → verify → respond."""

import logging
import time
from collections.abc import Callable
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
from newsqa.service.answering.candidates import answerable_by_candidates, candidates, pick
from newsqa.service.answering.context import Window, render_context, select_windows
from newsqa.service.answering.grounding import (
    Verdict,
    clean_answer,
    echoes_question,
    fills_slot,
    ground,
    question_coverage,
)
from newsqa.service.answering.lexical import Idf, fold, terms
from newsqa.service.answering.llm import build_chat_model, model_answers, model_calls
from newsqa.service.answering.prompts import chat_prompt, fenced, load_text
from newsqa.service.answering.retrieval import HybridRetriever, Passage
from newsqa.service.answering.schemas import (
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
                 chat_model: BaseChatModel | None = None):
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self._chat_model = chat_model
        self.retriever = HybridRetriever(embedder, settings.candidates)

    @classmethod
    def from_settings(cls, settings: Settings, chat_model: BaseChatModel | None = None) -> "Answerer":
        return cls(settings, StoreView(settings), get_embedder(settings), chat_model)

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

    def answer(self, request: ChatRequest, events: Events | None = None) -> ChatResponse:
        """The answer to `request`; `events`, when given, hears the stages and the model's draft tokens."""
        input_limits.check(request, self.settings)
        turn = _Turn(events)
        snapshot = self.store.current()  # one generation of the store for the whole question
        if snapshot.empty:
            return self._refusal("empty_index", turn)
        question = request.question
        if request.history and self.settings.history_turns:
            turn.stage("rewriting")
            turn.standalone = self._standalone(question, request, turn.usage)
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
        best_coverage = max((question_coverage(question, p, idf) for p in passages), default=0.0)
        if best_coverage < self.settings.min_question_coverage:
            log.debug("refused before generation: no passage addresses %r", question)
            return self._refusal("no_passage", turn)

        t = time.perf_counter()
        windows = select_windows(
            question, passages, self.embedder, idf, self.settings.context_windows, self.settings.window_chars
        )
        if not windows:
            return self._refusal("no_passage", turn)
        asked = question
        if request.choices:  # only the model sees the options; retrieval and grounding use the question
            template = load_text(self.settings.prompts_dir, "choices")
            asked = template.format(question=question, options=" | ".join(request.choices))
        windows, context = self._fit_windows(windows, asked)
        turn.stage("generating")
        raw = self._generate(context, asked, turn)
        turn.stage("verifying")
        settled = self._settle(raw, question, request, context, windows, passages, idf, turn)
        turn.timings.generate_ms = _ms(t)
        if isinstance(settled, str):
            log.debug("refused %r: model said %r (%s)", question, raw, settled)
            return self._refusal(settled, turn)
        return self._respond(settled, turn)

    @staticmethod
    def _named_time(question: str, request: ChatRequest) -> tuple[date, date] | None:
        """The publication window the question's time words point at, unless the request set dates itself."""
        if request.filters.since or request.filters.until:
            return None
        return recency.window(question, request.as_of or date.today())

    def _settle(self, raw: str, question: str, request: ChatRequest, context: str, windows: list[Window],
                passages: list[Passage], idf: Idf, turn: "_Turn") -> "_Settled | RefusalReason":
        """The first answer that a passage states and the verifier confirms, with the verifier's confidence.

        First the model's own reply. Then, when it echoed the question ("who killed X?" -> "X") or did not stand
        (no passage states it, or the verifier doubted it), its choice among what the passages name, which a small
        model gets right far more often than it writes it; with the user's options, each other option a passage
        states. Last, for an echo only, the passage that best matches the question, quoted: what the sources say,
        for the reader to judge, not a short answer for the verifier to confirm.
        """

        def check(answer: str, quotation: bool = False) -> Verdict:
            return ground(question, answer, windows, passages, idf, self.settings.min_question_coverage, quotation)

        tried: list[str] = []  # answers a passage states but the verifier turned down
        echoed = echoes_question(clean_answer(raw), question, idf)
        if echoed:
            log.debug("model echoed the question (%r)", raw)  # the asker's words: not in production logs
        else:
            verdict = check(raw)
            if not verdict.refused and (confirmed := self._confirmed(question, verdict, turn, tried)):
                return confirmed
        if request.choices:  # a pick no passage states, or one the verifier doubts: the other options
            for option in (o for o in request.choices if not pick(raw, [o])):
                verdict = check(option)
                if not verdict.refused and (confirmed := self._confirmed(question, verdict, turn, tried)):
                    return confirmed
        else:
            verdict = check(self._choose(context, question, windows, idf, turn, tried))
            if not verdict.refused and (confirmed := self._confirmed(question, verdict, turn, tried)):
                return confirmed
        if echoed and not (verdict := check(windows[0].lead, quotation=True)).refused:
            return _Settled(verdict, None, quoted=True)
        return "not_confirmed" if tried else "not_grounded"

    def _confirmed(self, question: str, verdict: Verdict, turn: "_Turn",
                   tried: list[str]) -> "_Settled | None":
        """The answer with the verifier's confidence when it confirms it; else None, and the answer joins `tried`.
        No verdict (a reply neither yes nor no, which an article's text may have steered) confirms nothing."""
        confidence = self._confirm(question, verdict, turn)
        if confidence is not None and confidence >= self.settings.min_answer_confidence:
            return _Settled(verdict, confidence)
        log.debug("not confirmed (%s): %r for %r", confidence, verdict.answer, question)
        tried.append(verdict.answer)
        return None

    def _confirm(self, question: str, verdict: Verdict, turn: "_Turn") -> float | None:
        """The verifier's probability that the cited quotes say the answer answers the question."""
        with model_calls():
            judgement = self.verifier.judge(question, verdict.answer, [s.quote for s in verdict.supports],
                                            [s.passage.title for s in verdict.supports])
        _count(judgement.reply, turn.usage)
        return None if judgement.probability is None else round(judgement.probability, 4)

    def _choose(self, context: str, question: str, windows: list[Window], idf: Idf, turn: "_Turn",
                rejected: list[str]) -> str:
        """Choosing beats writing for a small model: what the passages name becomes the options (of the kind the
        question asks for, not what it is about, nor an answer already rejected); "none" is no answer."""
        if not answerable_by_candidates(question):
            return ""
        turned_down = {fold(r) for r in rejected}
        options = [o for o in candidates(windows) if fold(o) not in turned_down
                   and fills_slot(question, o) and not echoes_question(o, question, idf)]
        options = options[: self.settings.answer_candidates]
        if not options:
            return ""
        template = load_text(self.settings.prompts_dir, "choose")
        reply = self._generate(context, template.format(question=question, options=" | ".join(options)), turn)
        chosen = pick(reply, options)
        log.info("chose %r from %s (model said %r)", chosen, options, reply)
        return chosen or ""

    def _generate(self, context: str, asked: str, turn: "_Turn") -> str:
        """The model's reply to `asked` over `context`; its tokens go to the events as a draft."""
        config = RunnableConfig(callbacks=[_Draft(turn.events)]) if turn.events else None
        with model_calls():
            reply = self.answer_chain.invoke({"passages": fenced(context), "question": asked}, config=config)
        _count(reply, turn.usage)
        return str(reply.content)

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

    def _standalone(self, question: str, request: ChatRequest, usage: Usage) -> str | None:
        room = input_limits.prompt_room(self.settings, self._template_text("rewrite"))
        turns = input_limits.fit_history(request.history[-self.settings.history_turns:], question, room)
        if not turns:
            return None
        history = "\n".join(f"{t.role}: {t.content}" for t in turns)
        with model_calls():
            reply = self.rewrite_chain.invoke({"history": history, "question": question})
        _count(reply, usage)
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
                            quoted=settled.quoted, confidence=settled.confidence, **turn.finish())

    def _refusal(self, reason: RefusalReason, turn: "_Turn") -> ChatResponse:
        text = load_text(self.settings.prompts_dir, "empty_index" if reason == "empty_index" else "refusal")
        return ChatResponse(answer=text, refused=True, refusal_reason=reason, **turn.finish())


@dataclass(frozen=True)
class _Settled:
    """An answer that stands: what the passages say, the verifier's confidence, and whether it is a quotation."""

    verdict: Verdict
    confidence: float | None
    quoted: bool = False


@dataclass
class _Turn:
    """What one answer records on its way: when it started, its timings and token usage, the rewritten question."""

    events: Events | None = None
    started: float = field(default_factory=time.perf_counter)
    timings: Timings = field(default_factory=Timings)
    usage: Usage = field(default_factory=Usage)
    standalone: str | None = None

    def stage(self, name: str, passages: int | None = None) -> None:
        if self.events:
            self.events("stage", {"stage": name, "passages": passages})

    def finish(self) -> dict[str, Any]:
        self.timings.total_ms = _ms(self.started)
        return {"timings": self.timings, "usage": self.usage, "standalone_question": self.standalone}


def _citation(n: int, passage: Passage, quote: str) -> Citation:
    meta = passage.meta
    return Citation(n=n, article_id=passage.article_id, chunk_id=passage.chunk_id, title=passage.title,
                    source=meta.source, url=meta.url, published_at=meta.published_at, quote=quote)


class _Draft(BaseCallbackHandler):
    """Passes the model's tokens on as they come: a provisional draft, until grounding has judged it."""

    def __init__(self, events: Events) -> None:
        self.events = events

    def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
        if isinstance(token, str) and token:
            self.events("token", {"text": token, "provisional": True})


def _count(reply: BaseMessage, usage: Usage) -> None:
    if isinstance(reply, AIMessage) and reply.usage_metadata:
        usage.prompt_tokens += reply.usage_metadata["input_tokens"]
        usage.completion_tokens += reply.usage_metadata["output_tokens"]


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)
