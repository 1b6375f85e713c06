// rxstream serve: a plain-JS chat page. It POSTs the conversation to /api/chat and reads
// the answer as Server-Sent Events in the "rxstream" protocol (one SSE event per typed
// rxstream event: event name = its type, data = its JSON). Model output is only ever
// written with textContent, never as HTML. Stop aborts the fetch: the browser closes the
// connection, the server disposes the stream, and the provider connection closes.
"use strict";

const $ = (id) => document.getElementById(id);
const messagesEl = $("messages");
const promptEl = $("prompt");
const sendEl = $("send");
const stopEl = $("stop");
const history = []; // [{role, content}] of completed turns
let controller = null;
let info = {};

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function addMessage(role) {
  const box = el("div", "message " + role);
  box.appendChild(el("div", "role", role === "user" ? "you" : (info.model || "assistant")));
  messagesEl.appendChild(box);
  return box;
}

function scrollDown() { messagesEl.scrollTop = messagesEl.scrollHeight; }

// Incremental SSE parser (WHATWG "Event stream interpretation": blank line dispatches,
// "data:" lines join with "\n", ":" starts a comment).
function sseParser(onEvent) {
  let buffer = "";
  let name = null;
  let data = [];
  return (chunk) => {
    buffer += chunk;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (data.length) onEvent(name || "message", data.join("\n"));
        name = null;
        data = [];
      } else if (line.startsWith(":")) {
        continue;
      } else {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") name = value;
        else if (field === "data") data.push(value);
      }
    }
  };
}

class AnswerView {
  constructor() {
    this.box = addMessage("assistant");
    this.box.dataset.state = "waiting";
    this.thinking = null;
    this.text = el("div", "text waiting");
    this.tools = el("div", "tools");
    this.error = el("div", "error");
    this.stats = el("div", "stats");
    this.box.append(this.text, this.tools, this.error, this.stats);
    this.toolViews = new Map();
    this.started = performance.now();
    this.firstToken = null;
    this.usage = null;
    this.stopReason = null;
    this.answer = "";
    this.deltas = 0;
  }
  markFirstToken() {
    if (this.firstToken === null) {
      this.firstToken = performance.now();
      this.text.classList.remove("waiting");
      this.box.dataset.state = "streaming";
    }
  }
  onEvent(type, event) {
    switch (type) {
      case "thinking_delta":
        if (!event.text) break;
        this.markFirstToken();
        if (this.thinking === null) {
          const details = el("details", "thinking");
          details.open = true;
          details.appendChild(el("summary", null, "Thinking"));
          this.thinking = el("pre");
          details.appendChild(this.thinking);
          this.box.insertBefore(details, this.text);
          this.thinkingDetails = details;
        }
        this.thinking.textContent += event.text;
        break;
      case "text_delta":
        this.markFirstToken();
        if (this.thinkingDetails) this.thinkingDetails.open = false;
        this.answer += event.text;
        this.deltas += 1;
        this.text.textContent = this.answer;
        break;
      case "tool_call_start": {
        this.markFirstToken();
        const details = el("details", "tool");
        details.open = true;
        const summary = el("summary");
        summary.append("tool call ", el("code", null, event.name), el("span", "dim", " streaming…"));
        const args = el("pre", "args");
        details.append(summary, args);
        this.tools.appendChild(details);
        this.toolViews.set(event.index, { summary, args, raw: "" });
        break;
      }
      case "tool_call_delta": {
        const view = this.toolViews.get(event.index);
        if (view) { view.raw += event.arguments_delta; view.args.textContent = view.raw; }
        break;
      }
      case "tool_call_end": {
        const view = this.toolViews.get(event.index);
        if (view) {
          view.args.textContent = JSON.stringify(event.arguments, null, 2);
          view.summary.lastChild.textContent = (event.provider_details || {}).truncated ? " (truncated)" : "";
        }
        break;
      }
      case "usage_update":
        this.usage = event.usage;
        break;
      case "stream_end":
        this.usage = event.usage;
        this.stopReason = event.stop_reason;
        break;
      case "stream_reset":
        this.answer = "";
        this.text.textContent = "";
        break;
      case "error":
        this.fail(event.error + ": " + event.message);
        break;
    }
    this.renderStats();
    scrollDown();
  }
  renderStats(final) {
    const parts = [];
    const now = performance.now();
    if (this.firstToken !== null) parts.push("TTFT " + ((this.firstToken - this.started) / 1000).toFixed(2) + " s");
    // Early usage reports are stale (Anthropic's message_start says 1 output token): never
    // count fewer tokens than text deltas, as rxstream's StreamStats does.
    const out = Math.max(this.usage ? this.usage.output_tokens : 0, this.deltas);
    if (this.firstToken !== null && now > this.firstToken && out) {
      parts.push((out / ((now - this.firstToken) / 1000)).toFixed(1) + " tok/s");
    }
    if (this.usage) parts.push(this.usage.input_tokens + " in / " + out + " out tokens");
    if (this.stopReason) parts.push("stop: " + this.stopReason);
    if (final) parts.push(((now - this.started) / 1000).toFixed(2) + " s");
    this.stats.textContent = parts.join(" · ");
  }
  fail(message) {
    this.text.classList.remove("waiting");
    this.error.textContent = "Error: " + message;
    this.box.dataset.state = "error";
  }
}

async function send(prompt) {
  const user = addMessage("user");
  user.appendChild(el("div", "text", prompt));
  const view = new AnswerView();
  scrollDown();
  controller = new AbortController();
  sendEl.disabled = true;
  stopEl.disabled = false;
  const messages = history.concat([{ role: "user", content: prompt }]);
  try {
    const response = await fetch("/api/chat", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ messages }),
      signal: controller.signal,
    });
    if (!response.ok) throw new Error("HTTP " + response.status);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    const feed = sseParser((type, data) => view.onEvent(type, JSON.parse(data)));
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      feed(value);
    }
    if (view.box.dataset.state !== "error") {
      view.box.dataset.state = "done";
      history.push({ role: "user", content: prompt }, { role: "assistant", content: view.answer });
    }
  } catch (err) {
    if (err.name === "AbortError") {
      view.text.classList.remove("waiting");
      view.error.textContent = "Stopped: the connection was closed.";
      view.box.dataset.state = "stopped";
    } else {
      view.fail(String(err.message || err));
    }
  } finally {
    view.renderStats(true);
    controller = null;
    sendEl.disabled = false;
    stopEl.disabled = true;
    promptEl.focus();
  }
}

$("form").addEventListener("submit", (e) => {
  e.preventDefault();
  const prompt = promptEl.value.trim();
  if (!prompt || controller) return;
  promptEl.value = "";
  send(prompt);
});
promptEl.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("form").requestSubmit(); }
});
stopEl.addEventListener("click", () => { if (controller) controller.abort(); });

fetch("/api/info").then((r) => r.json()).then((data) => {
  info = data;
  $("info").textContent = data.provider + " · " + data.model + (data.emulated ? " · offline emulator (no API key)" : "");
});
