// newsqa's web page: a chat over POST /v1/chat/stream (Server-Sent Events) and an article browser over
// GET /v1/articles and /v1/sources. No framework and no build step. Every piece of text from the server is
// put in the page as text (textContent, text nodes), never parsed as HTML.
"use strict";

const KEY_STORAGE = "newsqa.apiKey"; // sessionStorage: the key lives as long as the tab
const HISTORY_SENT = 12; // turns sent with a follow-up; the server reads only its latest few (NEWSQA_HISTORY_TURNS)
const STAGES = {
  rewriting: "Rewrote the follow-up as a standalone question",
  retrieving: "Searched the articles",
  generating: "Wrote a draft",
  verifying: "Checked the draft against the sources",
};

const $ = (id) => document.getElementById(id);
let history = []; // [{role, content}] of this conversation, sent with each question
let asking = false;

// --- building the page from data, as text only ---------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function safeUrl(url) {
  // only web links: an article's url could be "javascript:…"
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
  } catch {
    return null;
  }
}

function dateline(source, publishedAt) {
  return [source, publishedAt].filter(Boolean).join(" · ");
}

function articleHref(articleId, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v)).toString();
  return `#/article/${encodeURIComponent(articleId)}${query ? "?" + query : ""}`;
}

function originalLink(url) {
  const href = safeUrl(url);
  if (!href) return null;
  return el("a", { href, target: "_blank", rel: "noopener noreferrer", class: "original" },
    "Original article", el("span", { class: "visually-hidden" }, " (opens in a new tab)"));
}

// --- talking to the server --------------------------------------------------------------------------

let keyPrompt = null; // the open prompt, shared by requests that meet a 401 together

function askForKey(reason) {
  // resolves to the key the person typed, or null when they cancel
  if (keyPrompt) return keyPrompt;
  const dialog = $("key-dialog");
  $("key-error").textContent = reason;
  $("api-key").value = "";
  dialog.returnValue = "";
  keyPrompt = new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      const key = $("api-key").value.trim();
      keyPrompt = null;
      resolve(dialog.returnValue === "ok" && key ? key : null);
    }, { once: true });
  });
  dialog.showModal();
  $("api-key").focus();
  return keyPrompt;
}

async function api(path, options = {}) {
  // fetch with the session's API key; a 401 asks for a key (again) and retries until cancelled
  for (;;) {
    const key = sessionStorage.getItem(KEY_STORAGE);
    const headers = { ...(options.headers || {}) };
    if (key) headers.Authorization = `Bearer ${key}`;
    const response = await fetch(path, { ...options, headers });
    if (response.status !== 401) return response;
    if (sessionStorage.getItem(KEY_STORAGE) !== key) continue; // another request got a new key meanwhile
    const typed = await askForKey(key ? "That key was not accepted." : "");
    if (!typed) return response;
    sessionStorage.setItem(KEY_STORAGE, typed);
  }
}

async function problem(response) {
  // the server's plain message for a failed request ("question: …" for a field it rejected)
  try {
    const body = await response.json();
    if (Array.isArray(body.detail)) {
      return body.detail.map((e) => `${(e.loc || []).filter((p) => p !== "body").join(".")}: ${e.msg}`).join("; ");
    }
    if (body.detail) return String(body.detail);
  } catch {
    // not JSON: fall through to the status line
  }
  return response.status === 401 ? "An API key is needed." : `The server answered ${response.status}.`;
}

async function* serverSentEvents(response) {
  // {event, data} for each event of a text/event-stream body; comments (keep-alives) are skipped
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
    const blocks = buffer.split(/\r\n\r\n|\n\n|\r\r/);
    buffer = done ? "" : blocks.pop();
    for (const block of blocks) {
      let event = "message";
      const data = [];
      for (const line of block.split(/\r\n|\n|\r/)) {
        if (!line || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = text;
        else if (field === "data") data.push(text);
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
    if (done) return;
  }
}

// --- the chat ----------------------------------------------------------------------------------------

function filtersFromForm() {
  const filters = {};
  if ($("filter-source").value) filters.sources = [$("filter-source").value];
  if ($("filter-since").value) filters.since = $("filter-since").value;
  if ($("filter-until").value) filters.until = $("filter-until").value;
  return filters;
}

function addTurn(question) {
  const stages = el("ol", { class: "stages", "aria-label": "Progress" });
  const reply = el("div", { class: "reply" });
  const turn = el("li", { class: "turn", "aria-busy": "true" },
    el("p", { class: "question" }, el("span", { class: "visually-hidden" }, "You asked: "), question),
    stages, reply);
  $("conversation").append(turn);
  turn.scrollIntoView({ block: "nearest" });
  return { turn, stages, reply, draft: null };
}

function showStage(view, { stage, passages }) {
  let label = STAGES[stage] || stage;
  if (stage === "retrieving" && passages !== null && passages !== undefined) {
    label = `Found ${passages} passage${passages === 1 ? "" : "s"}`;
    const searching = view.stages.querySelector('[data-stage="retrieving"]');
    if (searching) searching.remove();
  } else if (stage === "retrieving") {
    label = "Searching the articles";
  }
  // The server sends "generating" once, before the first token. A second reply of the model (its choice among
  // the passages' names, after an echo or an answer that did not stand) comes after "verifying" and streams on
  // into the same draft; the answer then replaces the whole draft. Were "generating" ever sent again, its draft
  // would start afresh.
  if (stage === "generating" && view.draft) {
    view.reply.replaceChildren();
    view.draft = null;
  }
  view.stages.querySelectorAll("li").forEach((li) => li.classList.add("done"));
  view.stages.append(el("li", { "data-stage": stage }, label));
  $("status").textContent = `${label}…`;
}

function showDraft(view, { text }) {
  if (!view.draft) {
    view.draft = el("p", { class: "draft" });
    view.reply.append(el("p", { class: "draft-label" }, "Draft, still being checked:"), view.draft);
  }
  view.draft.append(document.createTextNode(text));
}

function citationCard(citation, turnNumber, related = false) {
  // a related passage supports nothing: no [n] that could be read as a marker of the answer
  const head = el("h3", {},
    related ? null : el("span", { class: "n" }, `[${citation.n}] `),
    el("a", { href: articleHref(citation.article_id, { chunk: citation.chunk_id, quote: citation.quote }) },
      citation.title));
  const id = `t${turnNumber}-${related ? "r" : "c"}${citation.n}`;
  return el("li", { class: related ? "related" : "citation", id },
    head,
    el("p", { class: "dateline" }, dateline(citation.source, citation.published_at)),
    el("blockquote", {}, citation.quote),
    originalLink(citation.url));
}

function showAnswer(view, body, turnNumber) {
  view.reply.replaceChildren(); // the draft was provisional: only this is the answer
  view.stages.querySelectorAll("li").forEach((li) => li.classList.add("done"));
  // a refusal with passages: the model was unavailable and the server offers what best matches instead
  const passagesOnly = body.refused && body.refusal_reason === "model_unavailable";
  const badge = passagesOnly ? "No answer" : body.refused ? "No confirmed answer" : null;
  view.reply.append(el("p", { class: body.refused ? "answer refused" : "answer" },
    badge ? el("span", { class: "badge" }, badge) : null, body.answer));
  if (body.standalone_question) {
    view.reply.append(el("p", { class: "hint" }, "Searched for: ", el("q", {}, body.standalone_question)));
  }
  if (body.citations.length) {
    view.reply.append(el("ol", { class: "citations", "aria-label": passagesOnly ? "Best-matching passages" : "Sources" },
      ...body.citations.map((c) => citationCard(c, turnNumber))));
  }
  const related = body.related;
  if (related.length) { // a refusal: what came nearest, for the reader to look through
    const label = `t${turnNumber}-related`;
    view.reply.append(
      el("p", { class: "related-label", id: label }, "Closest passages"),
      el("p", { class: "hint" }, "None of them states an answer; they are the passages nearest your question."),
      el("ol", { class: "citations", "aria-labelledby": label },
        ...related.map((c) => citationCard(c, turnNumber, true))));
  }
  const cited = body.citations.length;
  $("status").textContent = passagesOnly ? "No answer: the model is unavailable. Showing the best-matching passages."
    : body.refused ? `No answer confirmed in the articles${related.length ? "; showing the closest passages" : ""}.`
      : `Answered, citing ${cited} source${cited === 1 ? "" : "s"}.`;
}

function showError(view, message) {
  view.reply.replaceChildren(el("p", { class: "error", role: "alert" }, message));
  $("status").textContent = "";
}

async function ask(question) {
  const turnNumber = $("conversation").children.length + 1;
  const view = addTurn(question);
  const request = { question, history: history.slice(-HISTORY_SENT), filters: filtersFromForm() };
  let final = null;
  try {
    const response = await api("/v1/chat/stream", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(request),
    });
    if (!response.ok) return showError(view, await problem(response));
    for await (const { event, data } of serverSentEvents(response)) {
      if (event === "stage") showStage(view, data);
      else if (event === "token") showDraft(view, data);
      else if (event === "answer") showAnswer(view, (final = data), turnNumber);
      else if (event === "error") showError(view, data.detail || `The server failed (${data.status}).`);
    }
    if (final) {
      history.push({ role: "user", content: question }, { role: "assistant", content: final.answer });
    } else if (!view.reply.querySelector(".error")) {
      showError(view, "The answer was cut off; please ask again.");
    }
  } catch (error) {
    showError(view, "The server could not be reached; check your connection and ask again.");
  } finally {
    view.turn.removeAttribute("aria-busy");
  }
}

function setAsking(busy) {
  asking = busy;
  $("ask").disabled = busy;
  $("ask").textContent = busy ? "Answering…" : "Ask";
}

function newConversation() {
  history = [];
  $("conversation").replaceChildren();
  $("status").textContent = "New conversation started.";
  $("question").focus();
}

function setUpChat() {
  $("ask-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const question = $("question").value.trim();
    if (!question || asking) return;
    $("question").value = "";
    setAsking(true);
    try {
      await ask(question);
    } finally {
      setAsking(false);
      $("question").focus();
    }
  });
  $("question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("ask-form").requestSubmit();
    }
  });
  $("new-conversation").addEventListener("click", newConversation);
}

// --- the article browser ------------------------------------------------------------------------------

async function loadSources() {
  const response = await api("/v1/sources");
  if (!response.ok) return;
  const sources = await response.json();
  for (const select of document.querySelectorAll(".source-select")) {
    for (const s of sources) {
      select.append(el("option", { value: s.source }, `${s.source} (${s.articles})`));
    }
  }
}

function routeParams() {
  const hash = location.hash.slice(1) || "/";
  const [path, query = ""] = hash.split("?");
  return { path, params: new URLSearchParams(query) };
}

async function showArticles(params) {
  for (const [id, name] of [["article-q", "q"], ["article-source", "sources"], ["article-since", "since"],
    ["article-until", "until"]]) {
    $(id).value = params.get(name) || "";
  }
  const query = new URLSearchParams([...params].filter(([, v]) => v));
  const list = $("article-list");
  const response = await api(`/v1/articles?${query}`);
  if (!response.ok) {
    list.replaceChildren();
    $("article-count").textContent = await problem(response);
    return;
  }
  const page = await response.json();
  list.replaceChildren(...page.items.map((a) => el("li", {},
    el("a", { href: articleHref(a.id) }, a.title),
    el("span", { class: "dateline" }, dateline(a.source, a.published_at)))));
  const first = page.total ? page.offset + 1 : 0;
  const last = page.offset + page.items.length;
  $("article-count").textContent = page.total
    ? `${page.total} article${page.total === 1 ? "" : "s"}; showing ${first} to ${last}, newest first.`
    : "No article matches.";
  pageLink($("newer-page"), query, page.offset > 0 ? Math.max(0, page.offset - page.limit) : null);
  pageLink($("older-page"), query, last < page.total ? last : null);
}

function pageLink(link, query, offset) {
  link.hidden = offset === null;
  if (offset === null) return link.removeAttribute("href");
  const next = new URLSearchParams(query);
  next.set("offset", String(offset));
  link.href = `#/articles?${next}`;
}

function findQuote(text, quote, from) {
  // [start, end] of the quote in the text, whitespace-insensitive, preferring a match at or after `from`
  const words = quote.trim().split(/\s+/).filter(Boolean);
  if (!words.length) return null;
  const pattern = new RegExp(words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("\\s+"), "g");
  pattern.lastIndex = from;
  const match = pattern.exec(text) || ((pattern.lastIndex = 0), pattern.exec(text));
  return match ? [match.index, match.index + match[0].length] : null;
}

function paragraphsWithMark(text, range) {
  // the text as <p>s split at blank lines; the characters in `range` wrapped in <mark>s
  const paragraphs = [];
  let offset = 0;
  for (const part of text.split("\n\n")) {
    const start = offset;
    const end = offset + part.length;
    offset = end + 2;
    const p = el("p");
    if (range && range[0] < end && range[1] > start) {
      const from = Math.max(range[0], start) - start;
      const to = Math.min(range[1], end) - start;
      p.append(part.slice(0, from), el("mark", {}, part.slice(from, to)), part.slice(to));
    } else {
      p.append(part);
    }
    paragraphs.push(p);
  }
  return paragraphs;
}

async function showArticle(articleId, params) {
  const title = $("article-title");
  const body = $("article-text");
  const response = await api(`/v1/articles/${encodeURIComponent(articleId)}`);
  if (!response.ok) {
    title.textContent = "Article not available";
    $("article-meta").textContent = "";
    $("article-original").replaceChildren();
    $("article-note").textContent = "";
    body.replaceChildren(el("p", { class: "error", role: "alert" }, await problem(response)));
    title.focus();
    return;
  }
  const article = await response.json();
  title.textContent = article.title;
  $("article-meta").textContent = dateline(article.source, article.published_at);
  $("article-original").replaceChildren(originalLink(article.url) || "");
  const quote = params.get("quote");
  const chunk = article.chunks.find((c) => c.id === params.get("chunk"));
  let range = quote ? findQuote(article.text, quote, chunk ? chunk.start : 0) : null;
  if (!range && chunk) range = [chunk.start, chunk.end]; // the quote was reworded: the passage it came from
  $("article-note").textContent = range ? "The cited passage is highlighted." : "";
  body.replaceChildren(...paragraphsWithMark(article.text, range));
  title.focus();
  const mark = body.querySelector("mark");
  if (mark) mark.scrollIntoView({ block: "center" });
}

// --- views ---------------------------------------------------------------------------------------------

function route() {
  const { path, params } = routeParams();
  const views = { chat: $("chat-view"), articles: $("articles-view"), article: $("article-view") };
  let current = "chat";
  if (path === "/articles") current = "articles";
  else if (path.startsWith("/article/")) current = "article";
  for (const [name, view] of Object.entries(views)) view.hidden = name !== current;
  for (const [link, on] of [[$("nav-chat"), current === "chat"], [$("nav-articles"), current !== "chat"]]) {
    if (on) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (current === "articles") showArticles(params);
  else if (current === "article") showArticle(decodeURIComponent(path.slice("/article/".length)), params);
}

function setUpArticles() {
  $("article-search").addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const [id, name] of [["article-q", "q"], ["article-source", "sources"], ["article-since", "since"],
      ["article-until", "until"]]) {
      if ($(id).value.trim()) query.set(name, $(id).value.trim());
    }
    location.hash = `#/articles?${query}`;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setUpChat();
  setUpArticles();
  window.addEventListener("hashchange", route);
  route();
  loadSources();
});
