"""Input limits (settings) and the prompt budget: a valid request never overflows the model's context."""

from collections.abc import Sequence

from newsqa.errors import InvalidRequest
from newsqa.service.answering.schemas import ChatRequest, Turn
from newsqa.settings import Settings

_CHAT_TEMPLATE_TOKENS = 64  # role markers and separators the chat template adds around the messages


def check(request: ChatRequest, settings: Settings) -> None:
    """Raise InvalidRequest naming the first field over its limit."""
    _at_most(len(request.question), settings.max_question_chars, ("question",), "characters")
    _at_most(len(request.history), settings.max_history_turns, ("history",), "turns")
    for i, turn in enumerate(request.history):
        _at_most(len(turn.content), settings.max_turn_chars, ("history", i, "content"), "characters")
    for i, choice in enumerate(request.choices or []):
        _at_most(len(choice), settings.max_choice_chars, ("choices", i), "characters")
    _at_most(len(request.choices or []), settings.max_choices, ("choices",), "options")
    _at_most(len(request.filters.sources or []), settings.max_sources, ("filters", "sources"), "sources")


def tokens_at_most(*texts: str) -> int:
    """An upper bound on the tokens of `texts` for any tokenizer: a token never holds less than one byte."""
    return sum(len(text.encode("utf-8")) for text in texts)


def prompt_room(settings: Settings, template: str) -> int:
    """Tokens left for the variable parts of a prompt built on `template` once the reply has its room."""
    return settings.llm_ctx - settings.llm_max_tokens - _CHAT_TEMPLATE_TOKENS - tokens_at_most(template)


def fit_history(turns: Sequence[Turn], question: str, room: int) -> list[Turn]:
    """The latest turns that fit in `room` beside the question; the oldest go first."""
    kept: list[Turn] = []
    used = tokens_at_most(question)
    for turn in reversed(turns):
        used += tokens_at_most(turn.role, turn.content) + 2
        if used > room:
            break
        kept.insert(0, turn)
    return kept


def _at_most(value: int, limit: int, loc: tuple[str | int, ...], unit: str) -> None:
    if value > limit:
        raise InvalidRequest(loc, f"at most {limit} {unit} allowed, got {value}")
