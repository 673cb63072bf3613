"""Country and state names, for questions that ask "which country" or "which state".

A small model asked "the prime minister of which nation stepped down?" answers with the prime minister's
name: the sentence names both. Knowing what a country is lets the answer path turn that reply down and offer
the model the countries the passages name instead. Names come from ISO 3166 (pycountry); news also writes
countries by names ISO does not use, listed here.
"""

import re
from functools import cache

import pycountry

from newsqa.service.lexical import fold

_NEWS_COUNTRY_NAMES = (
    "Russia", "Turkey", "Britain", "Great Britain", "UK", "England", "Scotland", "Wales", "Northern Ireland",
    "America", "USA", "U.S.", "Ivory Coast", "Kosovo", "Holland", "Vatican", "Palestine", "Burma", "Swaziland",
    "Czech Republic", "Macedonia", "East Timor", "Cape Verde",
)


def _names(records: object, *fields: str) -> set[str]:
    found = set()
    for record in records:  # type: ignore[attr-defined]
        for name in (getattr(record, f, None) for f in fields):
            if name:
                found.add(fold(name))
                found.add(fold(name.split(",")[0]))  # "Korea, Republic of" is also "Korea"
    return found


@cache
def _pattern(kind: str) -> re.Pattern[str]:
    if kind == "country":
        names = _names(pycountry.countries, "name", "official_name", "common_name")
        names |= {fold(n) for n in _NEWS_COUNTRY_NAMES}
    else:  # the first-level divisions of every country: US and Indian states, German Länder, provinces
        names = _names((s for s in pycountry.subdivisions if s.parent_code is None), "name")
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True) if n)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def names_country(text: str) -> bool:
    return bool(_pattern("country").search(fold(text)))


def names_state(text: str) -> bool:
    return bool(_pattern("state").search(fold(text)))
