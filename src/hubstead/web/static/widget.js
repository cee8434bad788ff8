// The model page's inference widget: it calls the same API clients use (/models/{id} and the
// model's /v1/chat/completions) with the page's session and CSRF token, and draws the answer.
// Everything the server returns is put on the page as text, never as HTML.
(function () {
  "use strict";
  const box = document.getElementById("inference-widget");
  if (!box) return;
  const form = box.querySelector(".widget-form");
  const status = box.querySelector(".widget-status");
  const output = box.querySelector(".widget-output");
  const kind = box.dataset.kind;
  const task = box.dataset.task;
  const history = [];

  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || ""; }
    catch (e) { return ""; }
  }

  function headers(json) {
    const h = { "X-CSRF-Token": csrf(), "x-wait-for-model": "true" };
    if (json) h["Content-Type"] = "application/json";
    return h;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function bars(rows) {
    output.replaceChildren();
    const list = el("div", "bars");
    rows.forEach(function (row) {
      const line = el("div", "bar-row");
      line.appendChild(el("span", "bar-label", row.label));
      const track = el("span", "bar-track");
      const fill = el("span", "bar-fill");
      fill.style.width = Math.max(0, Math.min(100, row.score * 100)).toFixed(1) + "%";
      track.appendChild(fill);
      line.appendChild(track);
      line.appendChild(el("span", "bar-score", row.score.toFixed(3)));
      list.appendChild(line);
    });
    output.appendChild(list);
  }

  function highlighted(text, spans) {
    output.replaceChildren();
    const para = el("p", "highlighted");
    let at = 0;
    spans.slice().sort(function (a, b) { return a.start - b.start; }).forEach(function (span) {
      if (span.start < at) return;
      para.appendChild(document.createTextNode(text.slice(at, span.start)));
      const mark = el("mark", "entity", text.slice(span.start, span.end));
      mark.dataset.label = span.label;
      mark.title = span.label + " " + span.score.toFixed(3);
      mark.appendChild(el("sup", "entity-label", span.label));
      para.appendChild(mark);
      at = span.end;
    });
    para.appendChild(document.createTextNode(text.slice(at)));
    output.appendChild(para);
  }

  async function failure(response) {
    let message = response.status + " " + response.statusText;
    try {
      const body = await response.json();
      message = (body.error && (body.error.message || body.error)) || message;
    } catch (e) { /* not JSON */ }
    status.textContent = "Error: " + message;
    status.classList.add("error");
  }

  async function post(body, raw) {
    const response = await fetch(box.dataset.url, {
      method: "POST", credentials: "same-origin", headers: headers(!raw), body: raw ? body : JSON.stringify(body),
    });
    if (!response.ok) { await failure(response); return null; }
    return response.json();
  }

  async function chat(text) {
    history.push({ role: "user", content: text });
    const log = box.querySelector(".chat-log");
    log.appendChild(el("div", "chat-user", text));
    const reply = el("div", "chat-assistant", "");
    log.appendChild(reply);
    const response = await fetch(box.dataset.chatUrl, {
      method: "POST", credentials: "same-origin", headers: headers(true),
      body: JSON.stringify({ messages: history, stream: true, max_tokens: 256 }),
    });
    if (!response.ok) { await failure(response); history.pop(); return; }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut).trim();
        buffer = buffer.slice(cut + 2);
        if (!event.startsWith("data:")) continue;
        const data = event.slice(5).trim();
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) { status.textContent = "Error: " + (chunk.error.message || chunk.error); return; }
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        if (delta && delta.content) reply.textContent += delta.content;
      }
    }
    history.push({ role: "assistant", content: reply.textContent });
  }

  async function run() {
    const data = new FormData(form);
    const text = (data.get("text") || "").toString();
    status.classList.remove("error");
    status.textContent = "Computing… (the first call loads the model)";
    const started = performance.now();
    if (kind === "chat") {
      form.querySelector("textarea").value = "";
      await chat(text);
    } else if (kind === "image" || kind === "audio") {
      const file = data.get("file");
      if (!file || !file.size) { status.textContent = "Choose a file first"; return; }
      const answer = await post(await file.arrayBuffer(), true);
      if (!answer) return;
      if (kind === "image") bars(answer);
      else { output.replaceChildren(el("p", "transcript", answer.text)); }
    } else if (kind === "labels") {
      const parameters = task === "zero-shot-classification"
        ? { candidate_labels: (data.get("labels") || "").toString().split(",").map(function (s) { return s.trim(); }).filter(Boolean) }
        : {};
      const answer = await post({ inputs: text, parameters: parameters });
      if (!answer) return;
      bars(Array.isArray(answer[0]) ? answer[0] : answer);
    } else if (kind === "entities") {
      const answer = await post({ inputs: text, parameters: { aggregation_strategy: "simple" } });
      if (!answer) return;
      highlighted(text, answer.map(function (e) { return { start: e.start, end: e.end, score: e.score, label: e.entity_group || e.entity }; }));
    } else if (kind === "answer") {
      const context = (data.get("context") || "").toString();
      const answer = await post({ inputs: { question: text, context: context } });
      if (!answer) return;
      highlighted(context, [{ start: answer.start, end: answer.end, score: answer.score, label: "answer" }]);
    } else if (kind === "candidates") {
      const answer = await post({ inputs: text });
      if (!answer) return;
      bars(answer.map(function (c) { return { label: c.token_str, score: c.score }; }));
    } else if (kind === "similarity" || kind === "ranking") {
      const others = (data.get("others") || "").toString().split("\n").map(function (s) { return s.trim(); }).filter(Boolean);
      if (kind === "similarity") {
        const answer = await post({ inputs: { source_sentence: text, sentences: others } });
        if (!answer) return;
        bars(answer.map(function (score, i) { return { label: others[i], score: score }; }));
      } else {
        const answer = await post({ inputs: { query: text, texts: others } });
        if (!answer) return;
        bars(answer.map(function (r) { return { label: others[r.index], score: r.score }; }));
      }
    } else {
      const answer = await post({ inputs: text });
      if (!answer) return;
      const first = Array.isArray(answer) ? answer[0] : answer;
      output.replaceChildren(el("p", "generated", first.summary_text || first.translation_text || first.generated_text || ""));
    }
    status.textContent = "Computed in " + ((performance.now() - started) / 1000).toFixed(2) + " s";
  }

  form.addEventListener("submit", function (event) { event.preventDefault(); run(); });
})();
