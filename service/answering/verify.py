"""Does the quote say this is the answer? The model judges the (question, quote, answer) triple.

Grounding checks that a passage *contains* the answer, and a sentence that names two officials contains both,
whichever one the question asked about. Asked "is this the answer, according to the passage?", the same small
model judges far better than it writes: its probability of "yes" separates right answers from wrong ones where
the answer's own token probabilities barely did (eval/README.md, "The verifier's prompt").
"""

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from newsqa.service.answering.prompts import chat_prompt, fenced

_ALTERNATIVES = 10  # top tokens read at the verdict's position: "yes", "Yes", " yes" and "no" all count
_YES, _NO = re.compile(r"\W*yes\b", re.IGNORECASE), re.compile(r"\W*no\b", re.IGNORECASE)


@dataclass(frozen=True)
class Judgement:
    probability: float | None  # that the quote states the answer; None when the reply was neither yes nor no
    reply: BaseMessage


class Verifier:
    def __init__(self, chat_model: BaseChatModel, prompts_dir: Path | None):
        self.chain = chat_prompt(prompts_dir, "verify") | chat_model.bind(max_tokens=1, top_logprobs=_ALTERNATIVES)

    def judge(self, question: str, answer: str, quotes: list[str], headlines: list[str]) -> Judgement:
        """`headlines`: of the quotes' articles. They say what a quote is about when it doesn't ("Chief executive
        Priya Raman told a launch event..."), without the rest of the article to mislead."""
        # said once each: a pair quote and its first sentence, two quotes from one article
        passage = " ".join(dict.fromkeys(headlines)) + "\n" + " ".join(dict.fromkeys(quotes))
        reply = self.chain.invoke({"passage": fenced(passage), "question": question, "answer": answer})
        return Judgement(probability_of_yes(reply), reply)


def probability_of_yes(reply: BaseMessage) -> float | None:
    """P(yes) / (P(yes) + P(no)) at the reply's first token, from its top log-probabilities (OpenAI's shape:
    response_metadata["logprobs"]["content"][0]["top_logprobs"]); from the text where a backend gives none."""
    tokens = (reply.response_metadata.get("logprobs") or {}).get("content") or []
    top: list[dict[str, Any]] = tokens[0].get("top_logprobs") or [] if tokens else []
    yes = sum(math.exp(t["logprob"]) for t in top if _YES.fullmatch(t["token"]))
    no = sum(math.exp(t["logprob"]) for t in top if _NO.fullmatch(t["token"]))
    if yes + no > 0:
        return yes / (yes + no)
    text = str(reply.content)
    return 1.0 if _YES.match(text) else 0.0 if _NO.match(text) else None
