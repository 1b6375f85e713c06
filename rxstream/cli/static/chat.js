// rxstream serve: a plain-JS chat page. It POSTs the conversation to /api/chat and reads
// the answer as Server-Sent Events in the "rxstream" protocol (one SSE event per typed
// rxstream event: event name = its type, data = its JSON). Model and tool output is only
// ever written with textContent, never as HTML. Stop aborts the fetch: the browser closes
// the connection, the server disposes the stream (in a tool loop: the loop, as
// rxstream.tool_loop's disposal rules say), and the provider connection closes.
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

// One assistant answer. A plain answer streams into the box's own text and tools. In a tool
// loop (`rxstream serve --tools demo`) each IterationStart opens an iteration section with its
// own text and tool-call boxes; a ToolResult lands in the box of the call it answers (matched
// by tool_call_id), and the iteration that ends without tool use is marked as the final answer.
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
    this.toolViews = new Map(); // tool-call index -> view, for the current model turn
    this.toolById = new Map(); // tool_call_id -> view, for the whole answer (ToolResult)
    this.started = performance.now();
    this.firstToken = null;
    this.usage = null; // usage of the current model turn
    this.stopReason = null;
    this.answer = ""; // text of the current model turn; the final answer at the end
    this.deltas = 0; // text deltas of the whole answer
    // Tool loop totals (summed over ended iterations).
    this.iterations = 0;
    this.loopUsage = null;
    this.toolResults = 0;
    this.section = null;
  }
  markFirstToken() {
    this.text.classList.remove("waiting");
    if (this.firstToken === null) {
      this.firstToken = performance.now();
      this.box.dataset.state = "streaming";
    }
  }
  startIteration(event) {
    if (this.section === null) this.text.remove(); // the loop's text lives in its sections
    this.iterations = event.iteration;
    this.section = el("section", "iteration");
    this.section.dataset.iteration = String(event.iteration);
    this.sectionHead = el("div", "iteration-head", "Iteration " + event.iteration);
    this.text = el("div", "text waiting");
    this.tools = el("div", "tools");
    this.section.append(this.sectionHead, this.text, this.tools);
    this.box.insertBefore(this.section, this.error);
    this.thinking = null;
    this.thinkingDetails = null;
    this.toolViews = new Map();
    this.answer = "";
    this.usage = null;
  }
  endIteration(event) {
    const u = event.usage;
    const sum = this.loopUsage || { input_tokens: 0, output_tokens: 0 };
    this.loopUsage = { input_tokens: sum.input_tokens + u.input_tokens, output_tokens: sum.output_tokens + u.output_tokens };
    this.usage = null;
    this.stopReason = event.stop_reason;
    this.text.classList.remove("waiting");
    if (this.section) {
      const final = event.stop_reason !== "tool_use";
      this.section.dataset.state = "done";
      if (final) this.section.classList.add("final");
      this.sectionHead.textContent = "Iteration " + event.iteration + (final ? " · final answer" : "") +
        " · " + u.input_tokens + " in / " + u.output_tokens + " out tokens";
    }
  }
  toolResult(event) {
    this.toolResults += 1;
    const view = this.toolById.get(event.tool_call_id);
    const label = event.is_error ? "error" : "result";
    const result = el("pre", "result" + (event.is_error ? " error" : ""), event.output);
    if (!view) { // a result without a streamed call (should not happen): show it on its own
      this.tools.appendChild(result);
      return;
    }
    view.details.dataset.state = label;
    view.details.append(el("div", "result-label", label + " (" + (event.duration_s * 1000).toFixed(1) + " ms)"), result);
    view.summary.lastChild.textContent = event.is_error ? " → error" : " → done";
  }
  onEvent(type, event) {
    switch (type) {
      case "iteration_start":
        this.startIteration(event);
        break;
      case "iteration_end":
        this.endIteration(event);
        break;
      case "tool_result":
        this.toolResult(event);
        break;
      case "thinking_delta":
        if (!event.text) break;
        this.markFirstToken();
        if (this.thinking === null) {
          const details = el("details", "thinking");
          details.open = true;
          details.appendChild(el("summary", null, "Thinking"));
          this.thinking = el("pre");
          details.appendChild(this.thinking);
          this.text.parentNode.insertBefore(details, this.text);
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
        details.dataset.state = "streaming";
        details.dataset.toolCallId = event.id;
        const summary = el("summary");
        summary.append("tool call ", el("code", null, event.name), el("span", "dim", " streaming…"));
        const args = el("pre", "args");
        details.append(summary, args);
        this.tools.appendChild(details);
        const view = { details, summary, args, raw: "" };
        this.toolViews.set(event.index, view);
        this.toolById.set(event.id, view);
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
          const truncated = (event.provider_details || {}).truncated;
          view.details.dataset.state = "called";
          view.summary.lastChild.textContent = truncated ? " (truncated)" : this.iterations ? " running…" : "";
          this.toolById.set(event.id, view);
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
    if (this.iterations) {
      parts.push(this.iterations + (this.iterations === 1 ? " iteration" : " iterations"));
      parts.push(this.toolResults + (this.toolResults === 1 ? " tool call" : " tool calls"));
    }
    if (this.firstToken !== null) parts.push("TTFT " + ((this.firstToken - this.started) / 1000).toFixed(2) + " s");
    // Usage: the ended iterations of a tool loop plus the running model turn. Early usage
    // reports are stale (Anthropic's message_start says 1 output token): never count fewer
    // tokens than text deltas, as rxstream's StreamStats does.
    let usage = this.usage;
    if (this.loopUsage) {
      const cur = this.usage || { input_tokens: 0, output_tokens: 0 };
      usage = { input_tokens: this.loopUsage.input_tokens + cur.input_tokens, output_tokens: this.loopUsage.output_tokens + cur.output_tokens };
    }
    const out = Math.max(usage ? usage.output_tokens : 0, this.deltas);
    if (this.firstToken !== null && now > this.firstToken && out) {
      parts.push((out / ((now - this.firstToken) / 1000)).toFixed(1) + " tok/s");
    }
    if (usage) parts.push(usage.input_tokens + " in / " + out + " out tokens");
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
      // After a tool loop too, only the final answer's text goes back as the assistant turn.
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
  const tools = data.tools && data.tools.length ? " · tool loop: " + data.tools.join(", ") : "";
  $("info").textContent = data.provider + " · " + data.model + tools + (data.emulated ? " · offline emulator (no API key)" : "");
});
