"""Word lists that retrieval, grounding, candidates and eval each read: one list each, so they can't drift apart.

Lists keep the order the regexes were written in: `any_of` tries the words in that order."""

import re
from collections.abc import Iterable

# "six months" and "6 months" are the same answer: the words below "twenty", by value.
UNITS = {w: n for n, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
TENS = {w: 10 * n for n, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}
SCALES = {"hundred": 10**2, "thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
MONTH_ABBREVIATIONS = ("Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sept", "Sep", "Oct", "Nov", "Dec")

# "How many", "how long", "how tall": after "how", these ask for an amount, which is a number. Not "often":
# "daily" and "once a week" answer "how often" without one.
HOW_MUCH = ("many", "much", "long", "far", "old", "big", "high", "heavy", "deep", "fast", "large", "tall", "wide")


def any_of(words: Iterable[str]) -> str:
    """A regex group that matches any of the words."""
    return "(?:" + "|".join(map(re.escape, words)) + ")"
