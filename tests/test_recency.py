"""Times a question names, read against the date it was asked."""

from datetime import date

import pytest

from newsqa.service.answering.recency import window

ASKED = date(2022, 8, 4)


@pytest.mark.parametrize(("question", "expected"), [
    ("Who won the election this week?", (date(2022, 7, 25), date(2022, 8, 5))),
    ("What did the senate pass last week?", (date(2022, 7, 18), date(2022, 8, 5))),
    ("Who resigned yesterday?", (date(2022, 7, 30), date(2022, 8, 5))),
    ("What happened in March 2025?", (date(2025, 3, 1), date(2025, 4, 3))),
    ("Who won the cup in 2018?", (date(2018, 1, 1), date(2019, 1, 3))),
])
def test_a_named_time_becomes_a_window_of_publication_dates(question, expected):
    assert window(question, ASKED) == expected


def test_a_question_that_names_no_time_has_no_window():
    assert window("Who killed al-Rufayi?", ASKED) is None


def test_the_article_from_the_week_a_question_names_ranks_first(settings, fake_answerer):
    from datetime import datetime

    from newsqa.ingest.pipeline import ingest_items
    from newsqa.store.models import Article

    def festival(day: str, visitors: str) -> Article:
        return Article(title="Harbour Festival Draws Record Crowds", source="example-newswire.org",
                       published_at=datetime.fromisoformat(day), id=f"festival-{day}",
                       body=f"The harbour festival in Valewick drew {visitors} visitors over its three days, the "
                            f"organisers said. Traders reported their best weekend of the year.")

    ingest_items([festival("2025-03-01", "40,000"), festival("2025-06-10", "52,000")], settings, progress=False)
    answerer = fake_answerer(settings, "NOT FOUND")
    question = "How many visitors did the Valewick harbour festival draw this week?"
    for as_of, expected in ((date(2025, 6, 12), "52,000"), (date(2025, 3, 3), "40,000")):
        top = answerer.retriever.search(question, answerer.store.current(), k=2, prefer=window(question, as_of))
        assert expected in top[0].text


@pytest.mark.parametrize(("question", "as_of", "expected"), [
    ("What happened in 0000?", ASKED, None),
    ("What happened in January 0000?", ASKED, None),
    ("What happened today?", date.max, (date(9999, 12, 27), date.max)),
    ("What happened in 9999?", ASKED, (date(9999, 1, 1), date.max)),
    ("What happened today?", date.min, (date.min, date(1, 1, 2))),
])
def test_a_time_at_the_calendars_ends_is_held_there_not_an_error(question, as_of, expected):
    assert window(question, as_of) == expected
