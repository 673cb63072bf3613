"""Whether to give an answer: one calibrated probability that it is right, from the signals the answer path has.

Thresholding one model probability is brittle on unseen news; a small logistic model over several cheap signals
holds up better (Kamath, Jia and Liang, "Selective Question Answering under Domain Shift", ACL 2020). Its
coefficients ship as package data (calibrator.json); `python -m newsqa.eval.calibrate` trains them on traced eval
runs and also stores, from cross-validated predictions, the threshold that reached each precision.
"""

import json
import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any


@dataclass(frozen=True)
class Signals:
    """What the answer path knows about one candidate answer that a passage states."""

    verifier: float  # the verifier's P(yes) that the quotes say it answers the question
    writer: float  # mean log-probability of the tokens the model wrote it with
    chosen: bool  # picked from the passages' names, figures and dates, not written by the model
    coverage: float  # the best retrieved passage's share of the question's weighted words
    support_coverage: float  # the same share for the best passage that states the answer
    supports: int  # passages that state it and address the question (at most grounding.MAX_CITATIONS)
    support_rank: int  # retrieval rank (1 = best) of the highest passage that states it
    kind_asked: bool  # the question asks for a kind (a number, a time, a country, a name)

    def features(self) -> dict[str, float]:
        """The calibrator's inputs: probabilities as log-odds, ranks as reciprocals, flags as 0/1."""
        p = min(max(self.verifier, 1e-4), 1 - 1e-4)
        return {
            "verifier_logit": math.log(p / (1 - p)),
            "writer_logprob": max(self.writer, -10.0),
            "chosen": float(self.chosen),
            "coverage": self.coverage,
            "support_coverage": self.support_coverage,
            "supports": float(self.supports),
            "support_rank_inverse": 1.0 / self.support_rank,
            "kind_asked": float(self.kind_asked),
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Calibrator:
    weights: dict[str, float]  # per feature, on the raw feature scale
    intercept: float
    thresholds: list[tuple[float, float]]  # (threshold, precision its answers reached in cross-validation)

    def confidence(self, signals: Signals) -> float:
        features = signals.features()
        z = self.intercept + sum(w * features[name] for name, w in self.weights.items())
        return 1 / (1 + math.exp(-z))

    def threshold(self, target_precision: float) -> float:
        """The lowest threshold whose answers reached `target_precision` in cross-validation (the highest
        trained one when none did: then few answers are given, and those are the surest)."""
        reaching = [t for t, precision in self.thresholds if precision >= target_precision]
        return min(reaching) if reaching else max(t for t, _ in self.thresholds)


@lru_cache
def shipped() -> Calibrator:
    data = json.loads(files("newsqa.service.answering").joinpath("calibrator.json").read_text(encoding="utf-8"))
    return Calibrator(data["weights"], data["intercept"], [tuple(pair) for pair in data["thresholds"]])
