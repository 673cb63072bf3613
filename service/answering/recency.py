"""Times a question names ("this week", "yesterday", "in March 2025"), read against a reference date (the
request's `as_of`, default today), as the window of publication dates its answer most likely comes from."""

import calendar
import re
from datetime import date, timedelta

# A report lags what it reports by a few days; scraped publication dates are rough too.
_LAG = timedelta(days=3)
# phrase → how far back it reaches from the reference date
_RELATIVE = [
    (re.compile(r"\b(today|tonight|this morning)\b"), timedelta(days=1)),
    (re.compile(r"\byesterday\b"), timedelta(days=2)),
    (re.compile(r"\b(this|past) week\b|\bthis weekend\b"), timedelta(days=7)),
    (re.compile(r"\blast week(end)?\b"), timedelta(days=14)),
    (re.compile(r"\b(this|past) month\b"), timedelta(days=31)),
    (re.compile(r"\blast month\b"), timedelta(days=62)),
]
_MONTHS = {name.casefold(): n for n, name in enumerate(calendar.month_name) if name}
_MONTH_YEAR = re.compile(rf"\b({'|'.join(_MONTHS)}) (\d{{4}})\b")
_YEAR = re.compile(r"\bin (\d{4})\b")


def window(question: str, as_of: date) -> tuple[date, date] | None:
    """The publication dates the question's time points at, or None when it names no time."""
    asked = question.casefold()
    for phrase, reach in _RELATIVE:
        if phrase.search(asked):
            return _shift(as_of, -reach - _LAG), _shift(as_of, timedelta(days=1))
    if (match := _MONTH_YEAR.search(asked)) and int(match.group(2)) >= date.min.year:
        month, year = _MONTHS[match.group(1)], int(match.group(2))
        last_day = calendar.monthrange(year, month)[1]
        return date(year, month, 1), _shift(date(year, month, last_day), _LAG)
    if (match := _YEAR.search(asked)) and int(match.group(1)) >= date.min.year:  # "in 0000" names no date
        year = int(match.group(1))
        return date(year, 1, 1), _shift(date(year, 12, 31), _LAG)
    return None


def _shift(day: date, by: timedelta) -> date:
    """`day + by`, held at the calendar's ends (as_of=9999-12-31 asks about "today" too)."""
    try:
        return day + by
    except OverflowError:
        return date.max if by > timedelta(0) else date.min
