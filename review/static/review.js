// The review page: keyboard first. Enter saves and moves on, Tab/Shift-Tab move,
// Alt+A accepts the rule's proposal, Alt+D marks the page done, Alt+R rejects it.
// OCR text is only ever put in the page with textContent, never as HTML.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
let page = JSON.parse(document.getElementById("page-data").textContent);
let index = 0;

const $ = (id) => document.getElementById(id);
const input = $("value");

function say(text, kind) {
  $("message").textContent = text;
  $("message").className = "message " + (kind || "");
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch (e) { data = {}; }
  return { status: response.status, data };
}

function placeOutline(cell) {
  const outline = $("outline");
  const image = $("page-image");
  if (!outline || !image) return;
  if (!cell || !image.naturalWidth) { outline.hidden = true; return; }
  const scale = image.clientWidth / image.naturalWidth;
  outline.style.left = cell.x0 * scale + "px";
  outline.style.top = cell.y0 * scale + "px";
  outline.style.width = (cell.x1 - cell.x0) * scale + "px";
  outline.style.height = (cell.y1 - cell.y0) * scale + "px";
  outline.hidden = false;
  outline.scrollIntoView({ block: "center", inline: "nearest" });
}

function renderFlags() {
  const list = $("flags");
  list.replaceChildren();
  page.items.forEach((item, i) => {
    const li = document.createElement("li");
    li.textContent = item.field + " — " + item.reasons.join(", ") + (item.messages.length ? ": " + item.messages.join("; ") : "");
    if (i === index) li.className = "current";
    li.addEventListener("click", () => { index = i; show(); });
    list.appendChild(li);
  });
}

function renderTrail() {
  const body = $("trail");
  body.replaceChildren();
  for (const c of page.corrections) {
    const tr = document.createElement("tr");
    for (const v of [c.at, c.by, c.field, c.from, c.to]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
}

function show() {
  $("status").textContent = page.status;
  $("version").textContent = page.version;
  renderFlags();
  renderTrail();
  const item = page.items[index];
  if (!item) {
    $("editor").hidden = true;
    placeOutline(null);
    say(page.status === "rejected" ? "Page rejected." : "No flags left — Alt+D marks the page done.", "ok");
    document.body.focus();
    return;
  }
  $("editor").hidden = false;
  $("position").textContent = (index + 1) + " / " + page.items.length;
  $("field").textContent = item.field;
  input.value = item.value;
  input.readOnly = !item.editable;
  $("reason").textContent = item.reasons.join(", ") + (item.messages.length ? " — " + item.messages.join("; ") : "");
  $("confidence").textContent = item.confidence === null || item.confidence === undefined ? "—" : item.confidence.toFixed(3);
  $("readings").textContent = Object.entries(item.readings).map(([k, v]) => k + ": " + v).join("\n") || "—";
  $("proposal").textContent = item.proposal === null || item.proposal === undefined ? "—" : item.proposal + "  (Alt+A)";
  const crop = $("crop");
  if (item.cell) { crop.src = "/pages/" + page.id + "/cells/" + item.cell.id + "/crop"; crop.hidden = false; }
  else { crop.removeAttribute("src"); crop.hidden = true; }
  placeOutline(item.cell);
  input.focus();
  input.select();
}

async function refresh() {
  const response = await fetch("/api/pages/" + page.id, { credentials: "same-origin" });
  page = await response.json();
}

async function save(value, action) {
  const item = page.items[index];
  if (!item) return;
  const { status, data } = await post("/api/pages/" + page.id + "/fields",
    { field: item.field, value: value, version: page.version, action: action });
  if (status === 409) {
    page.version = data.current.version;
    $("version").textContent = page.version;
    const who = data.current.by ? data.current.by : "someone";
    $("conflict").textContent = who + " changed this page first: " + item.field + " is now “" + data.current.value +
      "”. Your value is still in the box — Enter saves it over theirs.";
    $("conflict").hidden = false;
    return;
  }
  if (status !== 200) { say((data && data.detail) ? JSON.stringify(data.detail) : "error " + status, "error"); return; }
  $("conflict").hidden = true;
  const saved = item.field;
  await refresh();
  const still = page.items.findIndex((i) => i.field === saved);
  index = still >= 0 ? (still + 1) % page.items.length : Math.min(index, Math.max(0, page.items.length - 1));
  show();
  const broken = data.flags.filter((f) => f.reason.startsWith("rule:") || f.reason === "missing");
  const rules = broken.length ? "Rules still broken: " + broken.map((f) => f.field + " " + f.reason).join(", ") + "."
    : "No rule broken.";
  const left = data.flags.length ? data.flags.length + " flag(s) open." : "No flags left — Alt+D marks the page done.";
  say("Saved " + saved + ". " + rules + " " + left, broken.length ? "warn" : "ok");
}

async function finish(reject) {
  const { status, data } = await post("/api/pages/" + page.id + (reject ? "/reject" : "/done"), { version: page.version });
  if (status !== 200) { say(data.detail || "error " + status, "error"); return; }
  const batch = new URLSearchParams(location.search).get("batch");
  location.href = data.next_page_id ? "/pages/" + data.next_page_id + (batch ? "?batch=" + batch : "") : "/";
}

document.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.altKey && document.activeElement === input) {
    event.preventDefault();
    save(input.value, "edit");
  } else if (event.key === "Tab") {
    event.preventDefault();
    if (!page.items.length) return;
    index = (index + (event.shiftKey ? -1 : 1) + page.items.length) % page.items.length;
    show();
  } else if (event.altKey && event.code === "KeyA") {
    event.preventDefault();
    const item = page.items[index];
    if (item && item.proposal !== null && item.proposal !== undefined) save(item.proposal, "proposal");
  } else if (event.altKey && event.code === "KeyD") {
    event.preventDefault();
    finish(false);
  } else if (event.altKey && event.code === "KeyR") {
    event.preventDefault();
    finish(true);
  }
});

const image = $("page-image");
if (image) {
  image.addEventListener("load", () => placeOutline((page.items[index] || {}).cell));
  window.addEventListener("resize", () => placeOutline((page.items[index] || {}).cell));
}
show();
