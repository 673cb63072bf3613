"""Embeddings from an OpenAI-compatible server (NEWSQA_EMBEDDING_PROVIDER=openai): infinity-emb,
text-embeddings-inference, vLLM or Ollama, shared by every ingest worker and API worker that points at it."""

import httpx
import numpy as np
import tenacity

from newsqa.errors import EmbedderUnavailable
from newsqa.settings import Settings
from newsqa.store.embedding import Embedder


class _Retryable(Exception):
    """A 5xx or 429: the server may answer the same request a moment later."""


class ServedEmbedder(Embedder):
    """POST {NEWSQA_EMBEDDING_BASE_URL}/embeddings, NEWSQA_EMBED_BATCH_SIZE texts a request, each retried
    NEWSQA_EMBEDDING_RETRIES times after a timeout, a refused connection, a 5xx or a 429. Vectors are made unit
    length here, whatever the server sends: the store compares them by cosine."""

    def __init__(self, settings: Settings, tokenizer: object) -> None:
        assert settings.embedding_base_url, "settings check that a base URL comes with the provider"
        self.url = settings.embedding_base_url.rstrip("/")
        self.model = settings.embedding_model
        self.batch_size = settings.embed_batch_size
        self._tokenizer = tokenizer
        self.client = httpx.Client(
            base_url=self.url, timeout=settings.embedding_timeout_s,
            headers={"Authorization": f"Bearer {settings.embedding_api_key.get_secret_value()}"})
        self.retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(1 + settings.embedding_retries),
            wait=tenacity.wait_exponential(multiplier=0.5, max=10),
            retry=tenacity.retry_if_exception_type((httpx.TransportError, _Retryable)), reraise=True)

    @property
    def tokenizer(self) -> object:
        return self._tokenizer

    def encode(self, texts: list[str]) -> np.ndarray:
        step = self.batch_size
        rows = [row for i in range(0, len(texts), step) for row in self._embed(texts[i : i + step])]
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(texts), -1 if texts else 0)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1, norms)

    def _embed(self, batch: list[str]) -> list[list[float]]:
        try:
            data = self.retrying(self._request, batch)
        except (httpx.HTTPError, _Retryable) as exc:
            raise EmbedderUnavailable(f"{self.url}: {exc}") from None
        if len(data) != len(batch):
            raise EmbedderUnavailable(f"{self.url} sent {len(data)} vectors for {len(batch)} texts")
        return [item["embedding"] for item in sorted(data, key=lambda item: item["index"])]

    def _request(self, batch: list[str]) -> list[dict]:
        response = self.client.post("/embeddings", json={"model": self.model, "input": batch,
                                                         "encoding_format": "float"})
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retryable(f"HTTP {response.status_code}")
        if response.status_code != 200:  # a wrong model name or URL: no retry makes it right
            raise EmbedderUnavailable(f"{self.url} answered HTTP {response.status_code}: {response.text[:300]}")
        return response.json()["data"]
