"""Whether to give an answer: one calibrated probability that it is right, from the signals the answer path has.

Thresholding one model probability is brittle on unseen news; a small logistic model over several cheap signals
holds up better (Kamath, Jia and Liang, "Selective Question Answering under Domain Shift", ACL 2020). Its
coefficients ship as package data (calibrator.json); `python -m newsqa.eval.calibrate` trains them on traced eval
runs and also stores, from cross-validated predictions, the threshold that reached each precision. They fit the
local model's verifier: another model's P(yes) is on another scale, so it gets its own file (NEWSQA_CALIBRATOR_FILE).
"""

import json
import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
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
        return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))  # exp never overflows

    def threshold(self, target_precision: float) -> float:
        """The lowest threshold whose answers reached `target_precision` in cross-validation (the highest
        trained one when none did: then few answers are given, and those are the surest)."""
        reaching = [t for t, precision in self.thresholds if precision >= target_precision]
        return min(reaching) if reaching else max(t for t, _ in self.thresholds)


# Any candidate: confidence() on it reads every weight, so a file naming an input Signals lacks fails when read.
_PROBE = Signals(verifier=0.5, writer=-1.0, chosen=False, coverage=1.0, support_coverage=1.0, supports=1,
                 support_rank=1, kind_asked=False)


@lru_cache
def load(path: Path | None = None) -> Calibrator:
    """The calibrator `python -m newsqa.eval.calibrate --out PATH` wrote, else the shipped one. A file that is not
    one raises OSError, ValueError, KeyError or TypeError."""
    source = path or files("newsqa.service.answering").joinpath("calibrator.json")
    data = json.loads(source.read_text(encoding="utf-8"))
    calibrator = Calibrator({name: float(w) for name, w in data["weights"].items()}, float(data["intercept"]),
                            [(float(t), float(precision)) for t, precision in data["thresholds"]])
    calibrator.confidence(_PROBE)
    calibrator.threshold(0.9)  # and one with no thresholds
    return calibrator
