// The review page: the page image beside the record laid out as the form is printed.
// Keyboard first: Enter saves and moves to the next flagged field (Ctrl+Enter in a multi-line
// box), Tab / Shift+Tab walk the flagged fields and unsaved drafts, Alt+↓ / Alt+↑ walk every
// field, a click on any field edits it, Alt+A accepts the rule's proposal, Alt+D marks the page
// done, Alt+R rejects it (with a reason). Typed values are kept as drafts (localStorage) until
// saved, so no key and no reload loses them.
// Record text is only ever put in the page with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const csrf = document.querySelector('meta[name="csrf-token"]').content;
let page = JSON.parse($("page-data").textContent);
const view = JSON.parse($("view-data").textContent);
const T = view.text;

// --- the JSON API: every call this page makes, in one place -----------------------------

const api = {
  async call(method, path, body) {
    const init = { method, credentials: "same-origin", headers: { "X-CSRF-Token": csrf } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    return { status: response.status, data };
  },
  page(id) { return api.call("GET", "/api/pages/" + id); },
  // One field's value, made on the field's version (another field's save since does not matter).
  saveField(id, field, value, action) {
    const body = { field, value, action, field_version: (page.field_versions || {})[field] || 0 };
    return api.call("POST", "/api/pages/" + id + "/fields", body);
  },
  done(id) { return api.call("POST", "/api/pages/" + id + "/done", { version: page.version }); },
  reject(id, reason) {
    return api.call("POST", "/api/pages/" + id + "/reject", { version: page.version, reason });
  },
  undoReject(id) {
    return api.call("POST", "/api/pages/" + id + "/undo-reject", { version: page.version });
  },
  // A section (header, goals, a table) confirmed as it reads: closes its fields' layout flags.
  confirmSection(id, section) {
    return api.call("POST", "/api/pages/" + id + "/sections/confirm", { section, version: page.version });
  },
  presence(id) { return api.call("POST", "/api/pages/" + id + "/presence"); },
};

// --- what the page shows -----------------------------------------------------------------

const order = view.order;  // every field of the form, in reading order
const position = new Map(order.map((path, i) => [path, i]));
const longFields = new Set(view.long);
const drafts = new Map();  // field -> the value typed and not saved
const draftKey = (field) => "formscan.draft." + page.id + "." + field;
let current = null;  // the field in the editor
let conflict = null;  // {field, version, theirs}: someone else saved the field first, until a choice is made
let nextPageId = null;

function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, key) => (values[key] === undefined ? "" : String(values[key])));
}

function say(text, kind) {
  $("message").textContent = text;
  $("message").className = "message " + (kind || "");
}

function label(field) { return view.labels[field] || field; }

function reasonText(reason, message) {
  for (const entry of view.reasons) {
    if (entry.reason !== reason) continue;
    const found = new RegExp(entry.pattern).exec(message || "");
    if (found) return entry.text.replace(/\{(\d+)\}/g, (_, n) => found[Number(n)] || "");
  }
  return message ? reason + ": " + message : reason;
}

function itemReasons(item) {
  // one message per reason where the API gives one each, else every message for every reason
  return item.reasons.map((reason, i) => reasonText(reason, item.messages.length === item.reasons.length
    ? item.messages[i] : item.messages.join("; ")));
}

function formatValue(value) {
  if (value === null || value === undefined) return "";
  return String(value);
}

function valueOf(field) {
  if (!page.record) return "";
  const match = /^(\w+)\[(\d+)\]\.(\w+)$/.exec(field);
  if (!match) return typeof page.record[field] === "object" ? "" : formatValue(page.record[field]);
  const row = (page.record[match[1]] || [])[Number(match[2])];
  return row ? formatValue(row[match[3]]) : "";
}

const itemOf = (field) => page.items.find((item) => item.field === field);
const cellOf = (field) => ((itemOf(field) || {}).cell) || view.cells[field] || null;
const formCells = (field) => document.querySelectorAll('.f[data-field="' + CSS.escape(field) + '"]');
const isLong = (field) => longFields.has(field);
const editorBox = () => (current && isLong(current) ? $("value-long") : $("value"));

function statusName(status) { return (view.statuses || {})[status] || status; }

// --- drafts: kept until saved, across reloads ----------------------------------------------

function loadDrafts() {
  const prefix = "formscan.draft." + page.id + ".";
  for (let i = 0; i < localStorage.length; i++) {
    const key = localStorage.key(i);
    if (!key || !key.startsWith(prefix)) continue;
    try { drafts.set(key.slice(prefix.length), JSON.parse(localStorage.getItem(key)).value); } catch (e) { /* not ours */ }
  }
}

function keepDraft(field, value) {
  if (value === valueOf(field)) {
    drafts.delete(field);
    localStorage.removeItem(draftKey(field));
  } else {
    drafts.set(field, value);
    localStorage.setItem(draftKey(field), JSON.stringify({ value, base: valueOf(field), at: Date.now() }));
  }
  renderCell(field);
  $("draft-mark").hidden = !(current && drafts.has(current));
}

function dropDraft(field) {
  drafts.delete(field);
  localStorage.removeItem(draftKey(field));
}

// --- the form, the flags, the trail ----------------------------------------------------------

function renderCell(field) {
  const flagged = Boolean(itemOf(field));
  for (const element of formCells(field)) {
    const shown = drafts.has(field) ? drafts.get(field) : valueOf(field);
    element.querySelector(".v").textContent = shown;
    element.classList.toggle("flagged", flagged);
    element.classList.toggle("draft", drafts.has(field));
    element.classList.toggle("current", field === current);
  }
}

function renderForm() {
  for (const field of order) renderCell(field);
  for (const table of document.querySelectorAll("table[data-section]")) {
    const name = table.dataset.section;
    table.classList.toggle("flagged", Boolean(itemOf(name)));
    table.classList.toggle("current", current === name);
  }
}

function renderFlags() {
  const list = $("flags");
  list.replaceChildren();
  $("flag-count").textContent = page.items.length;
  $("flag-list").hidden = !page.items.length;
  for (const item of page.items) {
    const li = document.createElement("li");
    const name = document.createElement("strong");
    name.textContent = label(item.field);
    li.append(name, " — " + itemReasons(item).join("；"));
    if (item.field === current) li.className = "current";
    li.addEventListener("click", () => select(item.field));
    list.appendChild(li);
  }
}

function renderTrail() {
  const body = $("trail");
  body.replaceChildren();
  for (const c of page.corrections) {
    const tr = document.createElement("tr");
    for (const [text, title] of [[c.at], [c.by], [label(c.field), c.field], [c.from], [c.to]]) {
      const td = document.createElement("td");
      td.textContent = text;
      if (title) td.title = title;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
}

function renderStatus() {
  $("status").textContent = statusName(page.status);
  $("status").dataset.status = page.status;
  $("version").textContent = page.version;
  const rejected = page.status === "rejected";
  $("rejected").hidden = !rejected;
  if (rejected) {
    const last = [...page.corrections].reverse().find((c) => c.action === "reject");
    $("rejected-text").textContent = T.rejected + (last && last.to && last.to !== "rejected"
      ? " " + fill(T.reason_was, { reason: last.to }) : "");
    $("undo-reject").hidden = false;
    const next = $("next-page");
    next.hidden = false;
    const batch = new URLSearchParams(location.search).get("batch");
    next.href = nextPageId ? "/pages/" + nextPageId + (batch ? "?batch=" + batch : "") : "/";
    next.textContent = nextPageId ? T.next_page : T.queue;
  }
}

// --- the image: zoom and the current cell ----------------------------------------------------

const image = $("page-image");
let zoom = 1;

function placeOutline(cell, scroll) {
  const outline = $("outline");
  if (!outline || !image) return;
  if (!cell || !image.naturalWidth) { outline.hidden = true; return; }
  const scale = image.clientWidth / image.naturalWidth;
  outline.style.left = cell.x0 * scale + "px";
  outline.style.top = cell.y0 * scale + "px";
  outline.style.width = (cell.x1 - cell.x0) * scale + "px";
  outline.style.height = (cell.y1 - cell.y0) * scale + "px";
  outline.hidden = false;
  if (scroll !== false) outline.scrollIntoView({ block: "center", inline: "center" });
}

function setZoom(value, around) {
  if (!image) return;
  const sheet = $("sheet");
  const before = { x: sheet.scrollLeft, y: sheet.scrollTop, width: image.clientWidth };
  zoom = Math.min(5, Math.max(0.5, value));
  image.style.width = zoom * 100 + "%";
  $("zoom-level").textContent = Math.round(zoom * 100) + "%";
  const ratio = image.clientWidth / (before.width || 1);
  const at = around || { x: sheet.clientWidth / 2, y: sheet.clientHeight / 2 };
  sheet.scrollLeft = (before.x + at.x) * ratio - at.x;
  sheet.scrollTop = (before.y + at.y) * ratio - at.y;
  placeOutline(cellOf(current), false);
}

// --- the editor --------------------------------------------------------------------------------

function stops() {
  // Tab's stops: the flagged fields in the API's order, with unsaved drafts where the form has them
  const list = page.items.map((item) => item.field);
  for (const field of order) {
    if (!drafts.has(field) || list.includes(field)) continue;
    const at = list.findIndex((other) => (position.has(other) ? position.get(other) : Infinity) > position.get(field));
    if (at < 0) list.push(field); else list.splice(at, 0, field);
  }
  return list;
}

function step(list, from, delta) {
  if (!list.length) return null;
  const i = list.indexOf(from);
  if (i >= 0) return list[(i + delta + list.length) % list.length];
  const at = from !== null && position.has(from) ? position.get(from) : -1;
  const after = list.findIndex((field) => (position.has(field) ? position.get(field) : Infinity) > at);
  if (delta > 0) return list[after < 0 ? 0 : after];
  const before = (after < 0 ? list.length : after) - 1;
  return list[(before + list.length) % list.length];
}

function select(field) {
  for (const id of ["value", "value-long"]) { $(id).dataset.holds = ""; $(id).hidden = true; }
  current = field;
  const item = itemOf(field);
  $("editor").hidden = false;
  $("pick").hidden = field !== null;
  renderForm();
  renderFlags();
  if (field === null) {
    $("label").textContent = "";
    $("position").textContent = "";
    $("draft-mark").hidden = true;
    $("reasons").replaceChildren();
    $("proposal").hidden = true;
    $("crop").hidden = true;
    placeOutline(null);
    return;
  }
  const list = stops();
  $("position").textContent = list.includes(field) ? (list.indexOf(field) + 1) + " / " + list.length : "";
  $("label").textContent = label(field);
  $("field").textContent = field;
  const box = editorBox();
  box.hidden = false;
  box.value = drafts.has(field) ? drafts.get(field) : valueOf(field);
  box.readOnly = item ? !item.editable : !position.has(field);
  box.dataset.holds = field;  // the field whose value the box holds, whatever is selected next
  $("draft-mark").hidden = !drafts.has(field);
  const reasons = $("reasons");
  reasons.replaceChildren();
  for (const text of item ? itemReasons(item) : []) {
    const li = document.createElement("li");
    li.textContent = text;
    reasons.appendChild(li);
  }
  $("confirm-section").hidden = !(item && item.section && item.reasons.every((r) => r.startsWith("rule:layout")));
  const proposal = item ? item.proposal : null;
  $("proposal").hidden = proposal === null || proposal === undefined;
  $("proposal").textContent = $("proposal").hidden ? "" : T.proposal + " " + proposal + " " + T.accept;
  const cell = cellOf(field);
  const confidence = item && item.confidence !== null && item.confidence !== undefined ? item.confidence
    : (cell ? cell.confidence : null);
  $("confidence").textContent = confidence === null || confidence === undefined ? "—" : Number(confidence).toFixed(3);
  $("reason").textContent = item ? item.reasons.join(", ") + (item.messages.length ? " — " + item.messages.join("; ") : "") : "—";
  $("evidence").textContent = cell && cell.evidence ? cell.evidence : "—";
  const readings = (item && Object.keys(item.readings || {}).length) ? item.readings : (cell ? cell.readings : {});
  $("readings").textContent = Object.entries(readings || {}).map(([k, v]) => k + ": " + v).join("\n") || "—";
  const crop = $("crop");
  if (cell && cell.id) { crop.src = "/pages/" + page.id + "/cells/" + cell.id + "/crop"; crop.hidden = false; }
  else { crop.removeAttribute("src"); crop.hidden = true; }
  placeOutline(cell);
  for (const element of formCells(field)) element.scrollIntoView({ block: "nearest", inline: "nearest" });
  box.focus();
  box.select();
}

async function pageChanged(status, data) {
  // a page action made on an old version of the page (someone saved a field since): show the page as it is.
  // Only a stale version's 409 carries ``current``; any other 409 (flags still open, ...) is said as it is.
  if (status !== 409 || !(data && data.current)) return false;
  await refresh();
  renderStatus();
  renderTrail();
  select(current !== null && (itemOf(current) || position.has(current)) ? current : (stops()[0] || null));
  say(T.page_changed, "warn");
  return true;
}

async function confirmSection() {
  const item = itemOf(current);
  if (!item || !item.section || !item.reasons.every((r) => r.startsWith("rule:layout"))) return;
  const { status, data } = await api.confirmSection(page.id, item.section);
  if (await pageChanged(status, data)) return;
  if (status !== 200) { say(fill(T.error, { detail: data.detail || status }), "error"); return; }
  for (const field of data.saved_fields || []) dropDraft(field);
  await refresh();
  renderStatus();
  renderTrail();
  const list = stops();
  select(list.length ? step(list, current, +1) : null);
  say(fill(T.section_confirmed, { n: (data.saved_fields || []).length }), "ok");
}

function leave() {
  // the value in the box stays a draft: nothing typed is lost by moving on
  for (const id of ["value", "value-long"]) {
    const box = $(id);
    if (box.dataset.holds && !box.hidden && !box.readOnly) keepDraft(box.dataset.holds, box.value);
  }
}

function move(field) {
  leave();
  select(field);
}

async function refresh() {
  const { status, data } = await api.page(page.id);
  if (status === 200) page = data;
}

function afterSaveMessage(field, flags) {
  const broken = flags.filter((f) => f.reason.startsWith("rule:") || f.reason === "missing");
  const words = [...new Set(broken.map((f) => reasonText(f.reason, f.message)))];
  const rules = words.length ? fill(T.still_broken, { list: words.join("；") }) : T.no_rule;
  const left = flags.length ? fill(T.left, { n: new Set(flags.map((f) => f.field)).size }) : T.none_left;
  say(fill(T.saved, { label: label(field) }) + rules + left, words.length ? "warn" : "ok");
}

async function save(value, action) {
  const field = current;
  if (field === null) return;
  const { status, data } = await api.saveField(page.id, field, value, action);
  if (status === 409 && data.current) {
    page.version = data.current.version;
    $("version").textContent = page.version;
    keepDraft(field, value);  // the typing is kept, and survives a reload
    // The field's new version is kept aside: only a choice below uses it, so Enter again is refused again.
    conflict = { field, version: data.current.field_version, theirs: data.current.value };
    $("conflict-text").textContent = fill(T.conflict, { who: data.current.by || T.someone, label: label(field),
      value: data.current.value, yours: value });
    $("conflict-mine").textContent = fill(T.conflict_mine, { value });
    $("conflict-theirs").textContent = fill(T.conflict_theirs, { value: data.current.value ?? "" });
    $("conflict").hidden = false;
    return;
  }
  if (status !== 200) {
    say(fill(T.error, { detail: typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail || status) }),
      "error");
    return;
  }
  dropDraft(field);
  conflict = null;
  $("conflict").hidden = true;
  await refresh();
  renderStatus();
  renderTrail();
  const list = stops();
  select(list.length ? step(list, field, +1) : null);
  afterSaveMessage(field, data.flags || []);
  if (!list.length) document.activeElement.blur();
}

async function finish() {
  leave();
  if (drafts.size) {
    say(fill(T.drafts_left, { n: drafts.size }), "error");
    select(stops().find((field) => drafts.has(field)));
    return;
  }
  const { status, data } = await api.done(page.id);
  if (await pageChanged(status, data)) return;
  if (status === 409) {  // flags still open: said in the reviewer's words, with where the first one is
    await refresh();
    renderStatus();
    say(fill(T.flags_open, { n: page.items.length }), "error");
    if (page.items.length) select(page.items[0].field);
    return;
  }
  if (status !== 200) { say(fill(T.error, { detail: data.detail || status }), "error"); return; }
  const batch = new URLSearchParams(location.search).get("batch");
  location.href = data.next_page_id ? "/pages/" + data.next_page_id + (batch ? "?batch=" + batch : "")
    : (batch ? "/?batch=" + batch : "/");
}

// --- reject, with a reason, and its undo ----------------------------------------------------

const dialog = $("reject-dialog");

function askToReject() {
  leave();
  $("reject-error").hidden = true;
  $("reject-reason").value = "";
  dialog.showModal();
  $("reject-reason").focus();
}

async function reject() {
  const reason = $("reject-reason").value.trim();
  if (!reason) {
    $("reject-error").textContent = T.need_reason;
    $("reject-error").hidden = false;
    $("reject-reason").focus();
    return;
  }
  const { status, data } = await api.reject(page.id, reason);
  if (status === 409) dialog.close();
  if (await pageChanged(status, data)) return;
  if (status !== 200) {
    $("reject-error").textContent = fill(T.error, { detail: typeof data.detail === "string" ? data.detail
      : JSON.stringify(data.detail || status) });
    $("reject-error").hidden = false;
    return;
  }
  dialog.close();
  nextPageId = data.next_page_id || null;
  await refresh();
  renderStatus();
  renderTrail();
  select(null);
  say(T.rejected, "warn");
  if (!$("undo-reject").hidden) $("undo-reject").focus();
}

async function undoReject() {
  const { status, data } = await api.undoReject(page.id);
  if (await pageChanged(status, data)) return;
  if (status !== 200) { say(fill(T.error, { detail: data.detail || status }), "error"); return; }
  await refresh();
  renderStatus();
  renderTrail();
  const list = stops();
  select(list.length ? list[0] : null);
  say(T.undone, "ok");
}

$("reject-form").addEventListener("submit", (event) => { event.preventDefault(); reject(); });
$("reject-cancel").addEventListener("click", () => dialog.close());
$("reject-reason").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); reject(); }
});
$("undo-reject").addEventListener("click", undoReject);
$("done-button").addEventListener("click", finish);
$("confirm-section").addEventListener("click", confirmSection);
$("reject-button").addEventListener("click", askToReject);

// --- keys and clicks -----------------------------------------------------------------------------

for (const id of ["value", "value-long"]) {
  $(id).addEventListener("input", () => { if ($(id).dataset.holds) keepDraft($(id).dataset.holds, $(id).value); });
  $(id).addEventListener("blur", leave);
}

$("form").addEventListener("click", (event) => {
  const target = event.target.closest(".f[data-field]");
  if (target) move(target.dataset.field);
});

// A conflict on a field is settled only by a choice: save one's own value over theirs, or take theirs.
function chooseInConflict(mine) {
  if (!conflict || conflict.field !== current) return;
  if (conflict.version !== undefined) {
    page.field_versions = { ...(page.field_versions || {}), [conflict.field]: conflict.version };
  }
  const theirs = conflict.theirs ?? "";
  if (mine) {
    save(editorBox().value, "edit");
    return;
  }
  dropDraft(conflict.field);
  conflict = null;
  $("conflict").hidden = true;
  editorBox().value = theirs;
  refresh().then(() => { renderStatus(); renderTrail(); });
}
$("conflict-mine").addEventListener("click", () => chooseInConflict(true));
$("conflict-theirs").addEventListener("click", () => chooseInConflict(false));

document.addEventListener("keydown", (event) => {
  if (dialog.open) return;  // the dialog's own keys: Escape cancels, Ctrl+Enter rejects
  const box = editorBox();
  const inBox = document.activeElement === box && !box.hidden;
  if (event.key === "Enter" && !event.altKey && inBox && (!isLong(current) || event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    save(box.value, "edit");
  } else if (event.key === "Tab" && !event.altKey && !event.ctrlKey) {
    event.preventDefault();
    const list = stops();
    const next = step(list.length ? list : order, current, event.shiftKey ? -1 : 1);
    if (next !== null) move(next);
  } else if (event.altKey && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
    event.preventDefault();
    const next = step(order, current, event.key === "ArrowUp" ? -1 : 1);
    if (next !== null) move(next);
  } else if (event.altKey && event.code === "KeyA") {
    event.preventDefault();
    const item = itemOf(current);
    if (item && item.proposal !== null && item.proposal !== undefined) save(item.proposal, "proposal");
  } else if (event.altKey && event.code === "KeyS") {
    event.preventDefault();
    confirmSection();
  } else if (event.altKey && event.code === "KeyD") {
    event.preventDefault();
    finish();
  } else if (event.altKey && event.code === "KeyR") {
    event.preventDefault();
    askToReject();
  }
});

if (image) {
  image.addEventListener("load", () => placeOutline(cellOf(current)));
  window.addEventListener("resize", () => placeOutline(cellOf(current), false));
  $("zoom-in").addEventListener("click", () => setZoom(zoom * 1.25));
  $("zoom-out").addEventListener("click", () => setZoom(zoom / 1.25));
  $("zoom-fit").addEventListener("click", () => setZoom(1));
  $("sheet").addEventListener("wheel", (event) => {
    if (!event.ctrlKey && !event.metaKey) return;  // a plain wheel scrolls
    event.preventDefault();
    const box = $("sheet").getBoundingClientRect();
    setZoom(zoom * (event.deltaY < 0 ? 1.15 : 1 / 1.15), { x: event.clientX - box.left, y: event.clientY - box.top });
  }, { passive: false });
}

async function heartbeat() {
  const { status, data } = await api.presence(page.id);
  const others = status === 200 && data && Array.isArray(data.others) ? data.others : (page.others || []);
  $("others").hidden = !others.length;
  $("others").textContent = others.length ? fill(T.others, { names: others.join("、") }) : "";
}
heartbeat();
setInterval(heartbeat, 20000);

loadDrafts();
renderStatus();
renderTrail();
if (page.record) {
  const list = stops();
  select(list.length ? list[0] : null);
  if (drafts.size) say(fill(T.draft_restored, { n: drafts.size }), "warn");
  else if (!page.items.length) say(page.status === "rejected" ? T.rejected : T.none_left, "ok");
}
