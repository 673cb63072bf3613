"""Chat models behind LangChain's interface: the embedded llama.cpp model, or any OpenAI-compatible server."""

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from newsqa.errors import ModelUnavailable
from newsqa.service.model_files import ensure_gguf
from newsqa.settings import Settings

log = logging.getLogger(__name__)
_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


class LocalChatModel(BaseChatModel):
    """Qwen2.5-Coder-1.5B-Instruct (GGUF) in-process through xllamacpp; greedy, one request at a time."""

    model_path: Path
    n_ctx: int = 4096
    n_threads: int = 2
    max_tokens: int = 48
    _server: Any = PrivateAttr(None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "xllamacpp"

    @property
    def loaded(self) -> bool:
        return self._server is not None

    def load(self) -> None:
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
        params.verbosity = -1  # llama.cpp logs every request to stderr otherwise
        return xlc.Server(params)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        request: dict[str, Any] = {
            "messages": [{"role": _ROLES[m.type], "content": m.content} for m in messages],
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "temperature": 0.0,
            "logprobs": True,  # per-token confidence, reported as OpenAI-compatible servers do
        }
        if stop:
            request["stop"] = stop
        self.load()
        with self._lock:  # the server keeps one cached prompt prefix; interleaved calls would thrash it
            reply = self._server.handle_chat_completions(request)
        if "error" in reply:
            log.error("local model failed: %s", reply["error"])
            raise ModelUnavailable("the local model could not answer")
        choice = reply["choices"][0]
        usage = reply.get("usage") or {}
        message = AIMessage(
            content=choice["message"]["content"] or "", response_metadata={"logprobs": choice.get("logprobs")},
            usage_metadata=UsageMetadata(input_tokens=usage.get("prompt_tokens", 0),
                                         output_tokens=usage.get("completion_tokens", 0),
                                         total_tokens=usage.get("total_tokens", 0)),
        )
        timings = {"timings": reply.get("timings")}
        return ChatResult(generations=[ChatGeneration(message=message, generation_info=timings)])


def answer_logprobs(message: BaseMessage) -> list[float] | None:
    """Log-probabilities of the tokens of the reply's first line (its answer), or None where the backend
    reports none. The shape is OpenAI's: response_metadata["logprobs"]["content"][i]["logprob"]."""
    tokens = (message.response_metadata.get("logprobs") or {}).get("content")
    if not tokens:
        return None
    first_line: list[float] = []
    for token in tokens:
        if "\n" in token["token"] and first_line:
            break
        first_line.append(token["logprob"])
    return first_line


@contextmanager
def model_calls() -> Iterator[None]:
    """A backend that is down, slow or refusing becomes ModelUnavailable; any other error is a bug."""
    try:
        yield
    except openai.APIError as exc:
        log.error("the model server failed: %s", exc)
        raise ModelUnavailable("the model server did not answer") from exc


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
            timeout=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
        )
    path = settings.llm_model_path or ensure_gguf(settings.model_cache_dir)
    return LocalChatModel(model_path=path, n_ctx=settings.llm_ctx, n_threads=settings.llm_threads,
                          max_tokens=settings.llm_max_tokens)
