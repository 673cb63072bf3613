"""Chat models behind LangChain's interface: the embedded llama.cpp model, or any OpenAI-compatible server."""

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from newsqa.errors import ModelUnavailable
from newsqa.service.answering import deadline
from newsqa.service.answering.model_files import ensure_gguf
from newsqa.settings import Settings

log = logging.getLogger(__name__)
_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


@dataclass
class PromptTally:
    """Prompt tokens the local model computed and those it took from its cache (llama.cpp's timings)."""

    computed: int = 0
    cached: int = 0
    computing_ms: float = 0.0

    def add(self, timings: dict[str, float]) -> None:
        self.computed += int(timings.get("prompt_n", 0))
        self.cached += int(timings.get("cache_n", 0))
        self.computing_ms += timings.get("prompt_ms", 0.0)


def kernels() -> str:
    """The CPU features the embedded llama.cpp was built for ("AVX2 = 1 | ..."): a portable wheel, or this CPU's."""
    import xllamacpp as xlc

    return " | ".join(f for f in xlc.get_system_info().removeprefix("CPU :").strip(" |").split(" | ")
                      if f.endswith("= 1")).replace(" = 1", "")


class LocalChatModel(BaseChatModel):
    """Qwen2.5-Coder-1.5B-Instruct (GGUF) in-process through xllamacpp; greedy, one request at a time, each
    stopped between tokens when its question's deadline passes."""

    model_path: Path
    n_ctx: int = 4096
    n_threads: int = 2
    max_tokens: int = 48
    prompt_cache_mb: int = 128
    _server: Any = PrivateAttr(None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _busy_since: float = PrivateAttr(0.0)
    _tally: PromptTally = PrivateAttr(default_factory=PromptTally)

    @property
    def _llm_type(self) -> str:
        return "xllamacpp"

    @property
    def loaded(self) -> bool:
        return self._server is not None

    def load(self) -> None:
        if self._server is not None:  # loaded: don't queue behind a generation holding the lock
            return
        with self._lock:
            if self._server is None:
                self._server = self._start_server()

    def _start_server(self) -> Any:
        import xllamacpp as xlc

        if not self.model_path.is_file():
            log.error("no model file at %s", self.model_path)
            raise ModelUnavailable("the local model file is missing")
        params = xlc.CommonParams()
        params.model.path = str(self.model_path)
        params.n_ctx = self.n_ctx
        params.cpuparams.n_threads = self.n_threads
        params.cpuparams_batch.n_threads = self.n_threads
        params.sampling.temp = 0.0
        params.cache_ram_mib = self.prompt_cache_mb
        params.verbosity = -1  # llama.cpp logs every request to stderr otherwise
        # Extra buffer types repack the weights, for AMX on a CPU that has it: llama.cpp built for this CPU died
        # there (GCC 12 drops its tile configuration's stores); patched, AMX read prompts no faster and wrote
        # slower. Without them the portable wheel prefilled 70 tokens/s against 67 with them, the native build
        # 140 (eval/README.md, "Speed").
        params.no_extra_bufts = True
        return xlc.Server(params)

    @property
    def tally(self) -> PromptTally:
        """Prompt tokens computed and cached since the model was made."""
        return self._tally

    @property
    def busy_for(self) -> float:
        """Seconds the current generation has run (0 when idle): a readiness probe tells busy from wedged."""
        return time.monotonic() - self._busy_since if self._busy_since else 0.0

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        request: dict[str, Any] = {
            "messages": [{"role": _ROLES[m.type], "content": m.content} for m in messages],
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "temperature": 0.0,
            "logprobs": True,  # as OpenAI-compatible servers report them: the verifier reads its P(yes) here
            # Streamed even when nobody watches the tokens: between tokens, generation can be stopped.
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if stop:
            request["stop"] = stop
        if top := kwargs.get("top_logprobs"):
            request["top_logprobs"] = top  # the alternatives at each position: a verdict's P(yes) against P(no)
        self.load()
        stop_at = deadline.current()
        reply = _Reply(run_manager, stop_at)
        deadline.acquire(self._lock)  # the server keeps one cached prompt prefix; interleaved calls would thrash it
        try:
            self._busy_since = time.monotonic()
            self._server.handle_chat_completions(request, reply.add)
        finally:
            self._busy_since = 0.0
            self._lock.release()
        if reply.timings:
            self._tally.add(reply.timings)
        if reply.error:
            log.error("local model failed: %s", reply.error)
            raise ModelUnavailable("the local model could not answer")
        if stop_at is not None:
            stop_at.check()  # generation stopped early because of it: the partial reply is no answer
        message = AIMessage(
            content="".join(reply.pieces), response_metadata={"logprobs": {"content": reply.logprobs}},
            usage_metadata=UsageMetadata(input_tokens=reply.usage.get("prompt_tokens", 0),
                                         output_tokens=reply.usage.get("completion_tokens", 0),
                                         total_tokens=reply.usage.get("total_tokens", 0),
                                         # where OpenAI-compatible servers report theirs (langchain_openai)
                                         input_token_details={"cache_read": int((reply.timings or {}).get(
                                             "cache_n", 0))}),
        )
        return ChatResult(generations=[ChatGeneration(message=message, generation_info={"timings": reply.timings})])


class _Reply:
    """Collects llama.cpp's streamed chunks; `add` returns True to stop the generation."""

    def __init__(self, run_manager: CallbackManagerForLLMRun | None, stop_at: deadline.Deadline | None) -> None:
        self.run_manager, self.stop_at = run_manager, stop_at
        self.pieces: list[str] = []
        self.logprobs: list[dict[str, Any]] = []
        self.usage: dict[str, int] = {}
        self.timings: dict[str, float] | None = None
        self.error: Any = None

    def add(self, chunk: dict[str, Any]) -> bool:
        if "error" in chunk:
            self.error = chunk["error"]
            return True
        self.usage = chunk.get("usage") or self.usage
        self.timings = chunk.get("timings") or self.timings
        for choice in chunk.get("choices", []):
            if piece := choice["delta"].get("content"):
                self.pieces.append(piece)
                if self.run_manager:
                    self.run_manager.on_llm_new_token(piece)
            self.logprobs.extend((choice.get("logprobs") or {}).get("content") or [])
        return self.stop_at is not None and self.stop_at.over()


def mean_logprob(reply: BaseMessage) -> float:
    """Mean log-probability of the reply's tokens (OpenAI's shape: response_metadata["logprobs"]["content"]); 0
    when the backend reports none."""
    tokens = (reply.response_metadata.get("logprobs") or {}).get("content") or []
    return sum(t["logprob"] for t in tokens) / len(tokens) if tokens else 0.0


@contextmanager
def model_calls() -> Iterator[None]:
    """A backend that is down, slow or refusing becomes ModelUnavailable; any other error is a bug."""
    try:
        yield
    except openai.APIError as exc:
        if (stop_at := deadline.current()) is not None:
            stop_at.check()  # cut short by its question's deadline or its asker leaving, not a broken server
        log.error("the model server failed: %s", exc)
        raise ModelUnavailable("the model server did not answer") from exc


def model_answers(model: BaseChatModel, deadline_s: float) -> bool:
    """For readiness: the local model is loaded and not stuck in one generation longer than a question may
    take; a server answers its model list within a few seconds."""
    if isinstance(model, LocalChatModel):
        return model.loaded and model.busy_for < deadline_s
    client = getattr(model, "root_client", None)  # ChatOpenAI's openai.OpenAI
    if client is None:
        return True
    try:
        client.with_options(timeout=3.0, max_retries=0).models.list()
        return True
    except openai.APIError as exc:
        log.warning("readiness: the model server did not answer: %s", exc)
        return False


def _within_deadline(request: httpx.Request) -> None:
    """Before every HTTP request to a model server, the client's retries included: none starts once its
    question's deadline has passed or its asker has gone, and none may take longer than the time left."""
    stop_at = deadline.current()
    if stop_at is None:  # not for a question (readiness, eval): the configured timeout alone
        return
    stop_at.check()
    left = stop_at.remaining()
    timeouts = request.extensions.get("timeout") or dict.fromkeys(("connect", "read", "write", "pool"))
    request.extensions["timeout"] = {name: left if t is None else min(t, left) for name, t in timeouts.items()}


def build_chat_model(settings: Settings) -> BaseChatModel:
    if settings.llm_provider == "openai":
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key,
            model=settings.llm_model,
            temperature=0.0,
            max_tokens=settings.llm_max_tokens,
            logprobs=True,
            streaming=True,  # the draft's tokens reach a streaming client as they come
            stream_usage=True,
            timeout=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
            http_client=httpx.Client(event_hooks={"request": [_within_deadline]}),
        )
    path = settings.llm_model_path or ensure_gguf(settings.model_cache_dir)
    return LocalChatModel(model_path=path, n_ctx=settings.llm_ctx, n_threads=settings.llm_threads,
                          max_tokens=settings.llm_max_tokens, prompt_cache_mb=settings.llm_prompt_cache_mb)
