"""The web page in a real headless Chromium (Debian's chromium and chromium-driver, driven by Selenium) against
the service on 127.0.0.1: the demo corpus in a real index, a scripted chat model that streams its replies."""

import json
import re
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import DEMO_DIR, REPO, SEED_TITLE, make_settings, running_uvicorn
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr, SecretStr

from newsqa.errors import ModelUnavailable
from newsqa.ingest.pipeline import ingest_paths
from newsqa.service.answering.answer import Answerer
from newsqa.service.api.app import create_app

webdriver = pytest.importorskip("selenium.webdriver", reason="needs the selenium package (pip install selenium)")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not CHROMIUM or not CHROMEDRIVER:
    pytest.skip("needs Debian's chromium and chromium-driver packages (apt-get install chromium chromium-driver)",
                allow_module_level=True)

SCREENSHOTS = REPO / "eval-runs" / "web"
WHO = "Who killed al-Rufayi?"
FOLLOW_UP, STANDALONE = "Who killed him?", "Who killed Abdullah Makki Muslih al-Rufayi?"
CUP = "Who won the Northern Cup final?"  # the model fails on this one
REPLIES = {WHO: "Iraqi intelligence", STANDALONE: "Iraqi intelligence", FOLLOW_UP: STANDALONE, CUP: "FAIL"}
# An article whose every field tries to run script: the page must show it as text.
HOSTILE = {"id": "gala", "title": 'Harbour <img src=x onerror="window.pwned=1"> Gala <b>Returns</b>',
           "body": "The gala returns. <script>window.pwned=2</script> Tickets sell fast.\n\n<i>Doors open at six.</i>",
           "source": "harbourpost.example", "url": "javascript:window.pwned=3", "published_at": "2025-06-01"}


class ScriptedChatModel(BaseChatModel):
    """Replies by the question in the prompt ("Question: …" or "Follow-up question: …"), word by word when
    streamed; NOT FOUND to anything else; FAIL is a model that doesn't answer. Keeps every prompt it was sent."""

    replies: dict[str, str]
    streaming: bool = False  # set it, as the real providers are built, for the draft's tokens to go out as they come
    _prompts: list[str] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def prompts(self) -> list[str]:
        return self._prompts

    def _reply(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> str:
        prompt = str(messages[-1].content)
        self._prompts.append(prompt)
        if kwargs.get("top_logprobs"):  # the verifier: every scripted answer is confirmed
            return "yes"
        asked = re.search(r"question: (.*)\n", prompt, re.IGNORECASE)
        reply = self.replies.get(asked.group(1).strip() if asked else "", "NOT FOUND")
        if reply == "FAIL":
            raise ModelUnavailable("the model server did not answer")
        return reply

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self._reply(messages, kwargs)))])

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for piece in re.findall(r"\S+\s*", self._reply(messages, kwargs)):
            time.sleep(0.05)  # a draft a person (and the test) can see arrive
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("web")
    (folder / "hostile.jsonl").write_text(json.dumps(HOSTILE) + "\n")
    # a page load makes a few API calls, and the tests load many pages from one address
    settings = make_settings(folder / "data", articles_page_size=4, rate_limit="10000/minute")
    summary = ingest_paths([DEMO_DIR, folder / "hostile.jsonl"], settings, progress=False)
    assert summary.added == 9 and not summary.errors
    return settings


@pytest.fixture(scope="module")
def model() -> ScriptedChatModel:
    return ScriptedChatModel(replies=REPLIES, streaming=True)


@pytest.fixture(scope="module")
def server(corpus, model) -> Iterator[str]:
    """The service's base URL."""
    with running_uvicorn(create_app(corpus, Answerer.from_settings(corpus, chat_model=model))) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1100,900", "--lang=en-US"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def page(browser, server) -> Any:
    """The page freshly loaded at `path` (a hash route), with a clean session."""

    def open_page(path: str = "/") -> Any:
        # about:blank between loads: a hash-only change wouldn't reload, and the last test's page may be busy
        browser.get("about:blank")
        browser.get(server + "/")
        browser.execute_script("sessionStorage.clear(); localStorage.clear();")
        browser.get("about:blank")
        browser.get(server + path)
        return browser

    return open_page


def wait_for(browser: Any, condition: Any, what: str, timeout: float = 20) -> Any:
    try:
        return WebDriverWait(browser, timeout).until(lambda _: condition())
    except TimeoutException:
        pytest.fail(f"timed out waiting for {what}")


def visible_text(browser: Any, css: str) -> list[str]:
    return [e.text for e in browser.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]


def no_horizontal_scroll(browser: Any) -> bool:
    return browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")


# --- the article browser --------------------------------------------------------------------------------------

def test_the_article_browser_pages_newest_first_and_filters_by_outlet(page):
    browser = page("/#/articles")
    wait_for(browser, lambda: visible_text(browser, "#article-list li"), "the first page of articles")
    assert "9 articles; showing 1 to 4, newest first." in browser.find_element(By.ID, "article-count").text
    first = visible_text(browser, "#article-list li a")
    assert len(first) == 4 and "Gala" in first[0]  # 2025-06-01, the newest
    browser.find_element(By.ID, "older-page").click()
    wait_for(browser, lambda: "showing 5 to 8" in browser.find_element(By.ID, "article-count").text, "page two")
    assert not set(visible_text(browser, "#article-list li a")) & set(first)

    outlet = browser.find_element(By.ID, "article-source")
    wait_for(browser, lambda: len(outlet.find_elements(By.TAG_NAME, "option")) > 1, "the outlets")
    outlet.find_element(By.CSS_SELECTOR, 'option[value="sportsdesk.example"]').click()
    browser.find_element(By.ID, "article-q").send_keys("cup final", Keys.ENTER)
    wait_for(browser, lambda: "1 article;" in browser.find_element(By.ID, "article-count").text, "the search")
    assert visible_text(browser, "#article-list li a") == [
        "Kestrels Win Northern Cup Final 3-1 After Late Double From Okafor"]


def test_article_text_from_the_store_is_shown_as_text_never_run_as_markup(page):
    browser = page("/#/articles?q=gala")
    link = wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#article-list a"), "the gala article")[0]
    assert link.text == HOSTILE["title"]
    link.click()
    wait_for(browser, lambda: browser.find_element(By.ID, "article-title").text == HOSTILE["title"], "the article")
    text = browser.find_element(By.ID, "article-text").text
    assert "<script>window.pwned=2</script>" in text and "<i>Doors open at six.</i>" in text
    assert browser.execute_script("return window.pwned") is None
    assert not browser.find_elements(By.CSS_SELECTOR, "main img, main script, main b, main i")
    assert not browser.find_elements(By.CSS_SELECTOR, "#article-original a")  # a javascript: url is no link


def test_an_unknown_article_says_so_naming_it(page):
    browser = page("/#/article/gone.example%3Amissing")
    wait_for(browser, lambda: visible_text(browser, "#article-text .error"), "the error")
    assert visible_text(browser, "#article-text .error") == ["no article with id 'gone.example:missing'"]


# --- the chat (POST /v1/chat/stream) ------------------------------------------------------------------------

WATCH_DRAFTS = """
window.drafts = [];
new MutationObserver((records) => records.forEach((r) => {
  if (r.target.classList && r.target.classList.contains('draft')) window.drafts.push(r.target.textContent);
})).observe(document.body, {subtree: true, childList: true});
"""


def ask(browser: Any, question: str) -> Any:
    """Type the question and press Enter; the turn once its answer (or error) is in."""
    before = len(browser.find_elements(By.CSS_SELECTOR, "#conversation > li"))
    browser.find_element(By.ID, "question").send_keys(question, Keys.ENTER)
    wait_for(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, "#conversation > li:not([aria-busy])"))
             > before, f"the answer to {question!r}")
    return browser.find_elements(By.CSS_SELECTOR, "#conversation > li")[-1]


def screenshot(browser: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / name))


def in_view(browser: Any, element: Any) -> bool:
    return browser.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight;", element)


def test_the_seed_question_shows_its_stages_the_draft_then_the_verified_answer_and_a_citation_card(page):
    browser = page("/")
    browser.execute_script(WATCH_DRAFTS)
    turn = ask(browser, WHO)
    stages = [li.text for li in turn.find_elements(By.CSS_SELECTOR, ".stages li")]
    assert re.fullmatch(r"Found \d+ passages?", stages[0]), stages
    assert stages[1:] == ["Wrote a draft", "Checked the draft against the sources"]
    assert any("Iraqi intelligence" in d for d in browser.execute_script("return window.drafts"))
    assert not turn.find_elements(By.CSS_SELECTOR, ".draft")  # the draft made way for the verified answer
    assert turn.find_element(By.CSS_SELECTOR, ".answer").text.startswith("Iraqi intelligence [1]")
    card = turn.find_element(By.CSS_SELECTOR, ".citation")
    assert card.find_element(By.CSS_SELECTOR, "h3").text == f"[1] {SEED_TITLE}"
    assert card.find_element(By.CSS_SELECTOR, ".dateline").text == "example-newswire.org"
    assert "carried out by Iraqi intelligence" in card.find_element(By.CSS_SELECTOR, "blockquote").text
    assert browser.find_element(By.ID, "status").text.startswith("Answered, citing")
    screenshot(browser, "answer.png")


def test_a_citation_card_opens_its_article_with_the_quoted_passage_highlighted_in_view(page):
    browser = page("/")
    turn = ask(browser, WHO)
    quote = turn.find_element(By.CSS_SELECTOR, ".citation blockquote").text
    turn.find_element(By.CSS_SELECTOR, ".citation h3 a").send_keys(Keys.ENTER)  # by keyboard
    mark = wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#article-text mark"), "the passage")[0]
    assert browser.find_element(By.ID, "article-title").text == SEED_TITLE
    assert " ".join(mark.text.split()) == " ".join(quote.split())
    wait_for(browser, lambda: in_view(browser, mark), "the passage scrolled into view", timeout=5)
    assert browser.switch_to.active_element.get_attribute("id") == "article-title"  # a screen reader starts here
    screenshot(browser, "article.png")
    browser.back()
    wait_for(browser, lambda: browser.find_element(By.ID, "chat-view").is_displayed(), "the conversation")
    assert browser.find_elements(By.CSS_SELECTOR, "#conversation .citation")  # still there


def test_a_question_the_articles_dont_cover_is_refused_with_the_closest_passages_as_dashed_cards(page):
    browser = page("/")
    turn = ask(browser, "What is the population of Baghdad?")
    answer = turn.find_element(By.CSS_SELECTOR, ".answer.refused")
    assert answer.find_element(By.CSS_SELECTOR, ".badge").text == "No confirmed answer"
    assert not turn.find_elements(By.CSS_SELECTOR, ".citation")  # nothing is cited
    assert browser.find_element(By.ID, "status").text == (
        "No answer confirmed in the articles; showing the closest passages.")
    closest = turn.find_element(By.CSS_SELECTOR, "ol[aria-labelledby]")
    label = browser.find_element(By.ID, closest.get_attribute("aria-labelledby"))
    assert label.text == "Closest passages"  # the list's name for a screen reader too
    cards = closest.find_elements(By.CSS_SELECTOR, "li.related")
    assert len(cards) == 3 and len({c.find_element(By.CSS_SELECTOR, "h3").text for c in cards}) == 3
    nearest = cards[0]
    assert nearest.find_element(By.CSS_SELECTOR, "h3").text == SEED_TITLE  # no [n]: it supports no answer
    assert "Baghdad" in nearest.find_element(By.CSS_SELECTOR, "blockquote").text
    style = browser.execute_script("return getComputedStyle(arguments[0]).borderTopStyle", nearest)
    assert style == "dashed"  # set apart from a citation's solid card
    screenshot(browser, "refusal.png")
    nearest.find_element(By.CSS_SELECTOR, "h3 a").click()  # the reader looks for themselves
    mark = wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#article-text mark"), "the passage")[0]
    assert browser.find_element(By.ID, "article-title").text == SEED_TITLE and "Baghdad" in mark.text


def test_a_failure_is_shown_plainly_and_the_next_question_is_answered(page):
    browser = page("/")
    failed = ask(browser, CUP)
    assert [e.text for e in failed.find_elements(By.CSS_SELECTOR, ".error[role=alert]")] == [
        "the answering model is unavailable: the model server did not answer"]
    assert not failed.find_elements(By.CSS_SELECTOR, ".answer")
    assert ask(browser, WHO).find_element(By.CSS_SELECTOR, ".answer").text.startswith("Iraqi intelligence [1]")


def test_with_the_model_down_the_passages_fallback_is_shown_as_no_answer(browser, corpus, model):
    fallback = corpus.model_copy(update={"fallback_passages": True})
    with running_uvicorn(create_app(fallback, Answerer.from_settings(fallback, chat_model=model))) as url:
        browser.get("about:blank")
        browser.get(url + "/")
        turn = ask(browser, CUP)
        assert turn.find_element(By.CSS_SELECTOR, ".answer.refused .badge").text == "No answer"
        assert "Kestrels" in turn.find_element(By.CSS_SELECTOR, ".citation h3").text
        assert not turn.find_elements(By.CSS_SELECTOR, ".related")  # its passages are the whole reply
        assert browser.find_element(By.ID, "status").text.startswith("No answer: the model is unavailable.")


def test_the_outlet_filter_goes_with_the_question(page):
    browser = page("/")
    browser.find_element(By.CSS_SELECTOR, "#filters summary").click()
    outlet = browser.find_element(By.ID, "filter-source")
    wait_for(browser, lambda: len(outlet.find_elements(By.TAG_NAME, "option")) > 1, "the outlets")
    outlet.find_element(By.CSS_SELECTOR, 'option[value="sportsdesk.example"]').click()
    assert ask(browser, WHO).find_elements(By.CSS_SELECTOR, ".answer.refused")  # the seed story is elsewhere


def test_a_follow_up_sends_the_conversation_and_a_new_conversation_forgets_it(page, model):
    browser = page("/")
    ask(browser, WHO)
    sent = len(model.prompts)
    turn = ask(browser, FOLLOW_UP)
    rewrite = model.prompts[sent]
    assert f"user: {WHO}" in rewrite and "assistant: Iraqi intelligence [1]" in rewrite
    assert turn.find_element(By.CSS_SELECTOR, ".stages li").text.startswith("Rewrote the follow-up")
    assert turn.find_element(By.CSS_SELECTOR, ".hint").text == f"Searched for: {STANDALONE}"
    assert turn.find_element(By.CSS_SELECTOR, ".answer").text.startswith("Iraqi intelligence [1]")

    browser.find_element(By.ID, "new-conversation").click()
    assert not browser.find_elements(By.CSS_SELECTOR, "#conversation > li")
    assert browser.switch_to.active_element.get_attribute("id") == "question"
    sent = len(model.prompts)
    ask(browser, FOLLOW_UP)
    assert not any("Follow-up question:" in p for p in model.prompts[sent:])  # no history, nothing to rewrite


def test_the_page_fits_a_phone_screen(page, browser):
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": True})
    try:
        ask(page("/"), WHO)
        assert no_horizontal_scroll(browser)
        screenshot(browser, "answer-phone.png")
        browser.find_element(By.CSS_SELECTOR, ".citation h3 a").click()
        wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#article-text mark"), "the article")
        assert no_horizontal_scroll(browser)
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_with_api_keys_the_page_asks_for_one_and_keeps_it_in_the_tab_only(browser, corpus, model):
    keyed = corpus.model_copy(update={"api_keys": [SecretStr("kestrel-42")]})
    with running_uvicorn(create_app(keyed, Answerer.from_settings(keyed, chat_model=model))) as url:
        browser.get("about:blank")
        browser.get(url + "/")
        browser.execute_script("sessionStorage.clear(); localStorage.clear();")
        browser.refresh()
        key = wait_for(browser, lambda: browser.find_element(By.ID, "api-key").is_displayed() and
                       browser.find_element(By.ID, "api-key"), "the key prompt")
        key.send_keys("guess", Keys.ENTER)
        wait_for(browser, lambda: browser.find_element(By.ID, "key-error").text == "That key was not accepted.",
                 "the key to be refused")
        browser.find_element(By.ID, "api-key").send_keys("kestrel-42", Keys.ENTER)
        outlet = browser.find_element(By.ID, "filter-source")
        wait_for(browser, lambda: len(outlet.find_elements(By.TAG_NAME, "option")) > 1, "the outlets, with the key")
        turn = ask(browser, WHO)
        assert turn.find_element(By.CSS_SELECTOR, ".answer").text.startswith("Iraqi intelligence [1]")
        stored = browser.execute_script("return [sessionStorage.getItem('newsqa.apiKey'), localStorage.length, "
                                        "document.cookie]")
    assert stored == ["kestrel-42", 0, ""]
