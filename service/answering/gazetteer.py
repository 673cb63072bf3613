"""Country and state names, for questions that ask "which country" or "which state".

A small model asked "the prime minister of which nation stepped down?" answers with the prime minister's
name: the sentence names both. Knowing what a country is lets the answer path turn that reply down and offer
the model the countries the passages name instead. Names come from ISO 3166 (pycountry); the English names
news uses where ISO's differ are listed here.
"""

import re
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

import pycountry

from newsqa.service.answering.lexical import fold

_NEWS_COUNTRY_NAMES = (
    "Russia", "Turkey", "Britain", "Great Britain", "UK", "England", "Scotland", "Wales", "Northern Ireland",
    "America", "USA", "U.S.", "Ivory Coast", "Kosovo", "Holland", "Vatican", "Palestine", "Burma", "Swaziland",
    "Czech Republic", "Macedonia", "East Timor", "Cape Verde", "Macau",
)
# ISO writes German and Austrian states in German
_NEWS_STATE_NAMES = (
    "Bavaria", "Lower Saxony", "Saxony", "Saxony-Anhalt", "Thuringia", "Hesse", "North Rhine-Westphalia",
    "Rhineland-Palatinate", "Lower Austria", "Upper Austria", "Styria", "Carinthia", "Tyrol",
)


def is_country(text: str) -> bool:
    """The whole text is a country's name: "South Korea's Unification Ministry" is not a country."""
    return bool(_countries().fullmatch(fold(text).strip()))


def is_state(text: str) -> bool:
    return bool(_states().fullmatch(fold(text).strip()))


@cache
def _countries() -> re.Pattern[str]:
    return _any_of(_iso_names(pycountry.countries, "name", "official_name", "common_name"), _NEWS_COUNTRY_NAMES)


@cache
def _states() -> re.Pattern[str]:
    """The first-level divisions of every country: US and Indian states, German Länder, provinces."""
    top_level = (s for s in pycountry.subdivisions if s.parent_code is None)
    return _any_of(_iso_names(top_level, "name"), _NEWS_STATE_NAMES)


def _iso_names(records: Iterable[Any], *fields: str) -> Iterator[str]:
    for record in records:
        for name in filter(None, (getattr(record, f, None) for f in fields)):
            yield name
            yield name.split(",")[0]  # "Korea, Republic of" is also "Korea"


def _any_of(*name_lists: Iterable[str]) -> re.Pattern[str]:
    """Any of the names ("the" before it or not), to match folded text."""
    names = {fold(n) for names in name_lists for n in names}
    return re.compile(rf"(?:the\s+)?(?:{'|'.join(re.escape(n) for n in names)})")
