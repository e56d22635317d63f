// chartscan UI: plain JavaScript, no build step. Upload with per-file progress, live
// batch counts over server-sent events, and the review queue's keyboard shortcuts.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf"]').content;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k);
  return e;
}

// Live counts for a batch card: the server sends "progress" events until we close.
function watchBatch(card, batchID, isFinishedUploading) {
  const es = new EventSource(`/api/v1/batches/${batchID}/events`);
  es.addEventListener("progress", (ev) => {
    const p = JSON.parse(ev.data);
    const counts = card.querySelector(".counts");
    counts.replaceChildren(
      el("span", { class: "count" }, el("b", {}, `${p.documents_final}/${p.documents}`), " files final"),
      el("span", { class: "count" }, el("b", {}, `${p.pages_final}/${p.pages}`), " pages final"),
      ...Object.entries(p.pages_by_status).map(([s, n]) =>
        el("span", { class: `count status-${s}`, "data-status": s }, el("b", {}, String(n)), ` ${s}`)));
    const failed = card.querySelector(".failed");
    if (failed) failed.replaceChildren(...p.failed.map((f) => el("li", { class: "bad" }, `${f.file_name}: ${f.reason}`)));
    const state = card.querySelector(".state");
    if (p.done && isFinishedUploading()) {
      state.textContent = `Every page is final: ${p.pages} pages in ${p.documents} files.`;
      state.classList.add("final");
      card.dataset.final = "true";
      es.close();
    } else if (isFinishedUploading()) {
      state.textContent = "Reading pages…";
    }
  });
  return es;
}

// upload sends one file with XMLHttpRequest, whose upload progress fetch cannot report.
// The size goes first so the server streams the file straight to storage.
function upload(batchID, file, bar, note) {
  return new Promise((resolve) => {
    const form = new FormData();
    form.append("size", String(file.size));
    form.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/v1/batches/${batchID}/files`);
    xhr.setRequestHeader("X-CSRF-Token", csrf());
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; };
    xhr.onload = () => {
      let msg = "stored";
      try {
        const r = JSON.parse(xhr.responseText);
        if (r.error) msg = r.error;
        else if (r.files && r.files[0]) msg = r.files[0].error || (r.files[0].created ? "stored" : "already stored (same content)");
      } catch (_) { msg = `failed (${xhr.status})`; }
      bar.value = 1;
      note.textContent = msg;
      resolve();
    };
    xhr.onerror = () => { note.textContent = "upload failed: check the connection and try again"; resolve(); };
    xhr.send(form);
  });
}

async function startUpload(files) {
  if (!files.length) return;
  const label = document.getElementById("label").value;
  const urgent = document.getElementById("urgent").checked;
  const res = await fetch("/api/v1/batches", {
    method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: JSON.stringify({ label, urgent }),
  });
  if (!res.ok) { alert((await res.json()).error || "could not start a batch"); return; }
  const batch = await res.json();
  const card = document.getElementById("batch-card").content.firstElementChild.cloneNode(true);
  card.dataset.batch = batch.id;
  const link = card.querySelector(".batch-link");
  link.href = `/batches/${batch.id}`;
  link.textContent = batch.id.slice(0, 8);
  document.getElementById("uploads").prepend(card);
  let uploading = true;
  watchBatch(card, batch.id, () => !uploading);
  const list = card.querySelector(".files");
  const jobs = [...files].map((f) => {
    const bar = el("progress", { max: "1", value: "0" });
    const note = el("span", { class: "note" }, "waiting");
    list.append(el("li", { "data-file": f.name }, el("span", {}, f.name), bar, note));
    return { f, bar, note };
  });
  // Two at a time: enough to fill the line, few enough to show progress file by file.
  let next = 0;
  const worker = async () => { while (next < jobs.length) { const j = jobs[next++]; j.note.textContent = "uploading"; await upload(batch.id, j.f, j.bar, j.note); } };
  await Promise.all([worker(), worker()]);
  uploading = false;
  card.querySelector(".state").textContent = "Uploaded; reading pages…";
}

function initUpload() {
  const zone = document.getElementById("dropzone");
  if (!zone) return;
  const input = document.getElementById("files");
  // Copy the list first: clearing the input empties the live FileList it returned.
  input.addEventListener("change", () => { const files = [...input.files]; input.value = ""; startUpload(files); });
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); startUpload([...e.dataTransfer.files]); });
}

function initBatchPage() {
  const card = document.querySelector("section.batch-live[data-batch]");
  if (card) watchBatch(card, card.dataset.batch, () => true);
}

// The review queue and the quality checks are keyboard-first: every action has a key,
// shown on its button. A key whose action is not available says why, in a status region
// a screen reader announces. Enter in a field of the review form re-scores the
// candidates against the corrections; it never decides.
//
// The review desk (issue 13, items 5–7) never leaves the page for a decision: the next
// item is preloaded while the reviewer looks at this one (its data and its image), a
// decision or a skip is sent with fetch and answered with the next item, or leave to show
// the preloaded one; an EMPI search puts its results in place, keeping the corrections.
// Without the script every form still works as a plain form.
const desk = {
  preload: null,   // {key, version, html, image, ready} of the item after this one
  keyAt: 0,        // when the key of the decision on the way was pressed (epoch ms)
  path: "page",    // how the item on its way came: "preloaded", "answer" (sent with the decision's answer), "page"
  times: [],       // {key, ms, path, put, decoded}: key press to the next item fully shown; of it, key to the item in place, then to its image decoded
  shownP: null,    // settles once the item on screen is fully shown
};
window.chartscanDesk = desk;

const say = (msg) => {
  const m = document.getElementById("key-message");
  if (!m) return;
  m.textContent = "";
  // A fresh text node after the region emptied is announced even when the text repeats.
  setTimeout(() => { m.textContent = msg; }, 50);
};

let sent = false; // a form is on its way: later keys would act on a page that is leaving

function initKeys() {
  const item = document.getElementById("review-item") || document.getElementById("qa-item");
  if (!item && !document.getElementById("queue-empty") && !document.getElementById("qa-empty")) return;
  const typing = (t) => t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT");
  // A second submission (a key's and the browser's own for the same Enter) is dropped.
  // The desk's search in place leaves the page where it is, so it does not count.
  document.addEventListener("submit", (e) => {
    if (e.target.id === "empi-search" && e.target.dataset.inplace) return;
    if (sent) { e.preventDefault(); return; }
    sent = true;
  }, true);
  document.addEventListener("submit", deskSubmit);
  window.addEventListener("pageshow", () => { sent = false; });
  window.addEventListener("popstate", () => { location.reload(); });
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || sent) return;
    const t = e.target;
    if (typing(t)) {
      if (e.key === "Escape") { e.preventDefault(); t.blur(); return; }
      if (e.key === "Enter" && t.matches("#decision input[data-field]")) {
        e.preventDefault();
        const b = document.getElementById("rescore");
        if (b && !b.disabled) b.form.requestSubmit(b);
        else if (b) say(b.dataset.why || "Re-scoring is not available here.");
      }
      return;
    }
    const k = e.key.toLowerCase();
    if (k === "/" || k === "e") {
      const f = k === "/" ? document.getElementById("empi-q") : document.querySelector("#decision input[data-field]");
      if (!f) return;
      e.preventDefault();
      if (f.disabled || f.readOnly) { say("Nothing can be changed on this item."); return; }
      f.focus();
      return;
    }
    const targets = [...document.querySelectorAll(`[data-key="${CSS.escape(k)}"]`)];
    if (!targets.length) return;
    e.preventDefault();
    const target = targets.find((x) => !x.disabled);
    if (target) {
      desk.keyAt = performance.timeOrigin + e.timeStamp;
      try { sessionStorage.setItem("deskKeyAt", String(desk.keyAt)); } catch (_) { /* private mode */ }
      target.click();
      return;
    }
    say(targets[0].dataset.why || "That key is not available here.");
  });
  setupItem();
}

// setupItem readies the item on screen: its undo's minute, the focus, the search in
// place, and the preload of the item after it. It runs on a page load and after the
// desk put a new item in place.
function setupItem(later) {
  setupUndo();
  const search = document.getElementById("empi-search");
  if (search) search.addEventListener("submit", searchInPlace);
  // After re-scoring, a search or a pick, focus goes to what changed — never to an action.
  // A new item: focus on its heading, which a screen reader reads out.
  const focus = document.querySelector("[data-focus]") || document.getElementById("item-heading");
  if (focus) focus.focus();
  desk.shownP = shown();
  const item = document.getElementById("review-item");
  desk.preload = null;
  // Shown before the server answered the decision before it: the queue's next is asked
  // for once that decision holds. Either way once this item is on screen: the next
  // one's fetching and decoding does not compete with showing this one.
  // (Only if it is still the item on screen: a key may have come first.)
  if (item && !item.dataset.decided && item.dataset.mode !== "pick" && !later) {
    desk.shownP.then(() => { if (document.getElementById("review-item") === item && !desk.preload) preloadNext(item.dataset.item); });
  }
}

// setupUndo: undo lasts a minute; then its key says so instead.
function setupUndo() {
  const undo = document.getElementById("undo");
  if (undo) {
    setTimeout(() => {
      undo.disabled = true;
      undo.dataset.why = "Too late to undo: a decision can be undone for a minute after it is made.";
    }, Number(undo.dataset.undoLeft || 0) * 1000);
  }
}

// shown records, once the page image is on screen, how long the item took from the key
// press that asked for it (the benchmark reads desk.times).
function shown() {
  const item = document.getElementById("review-item") || document.getElementById("queue-empty");
  if (!item) return Promise.resolve();
  let at = desk.keyAt;
  if (!at) { try { at = Number(sessionStorage.getItem("deskKeyAt") || 0); } catch (_) { at = 0; } }
  desk.keyAt = 0;
  try { sessionStorage.removeItem("deskKeyAt"); } catch (_) { /* private mode */ }
  const t0 = performance.now();
  let decoded = 0;
  return new Promise((resolve) => {
    const done = () => { decoded = performance.now() - t0; requestAnimationFrame(() => requestAnimationFrame(() => {
      const key = item.dataset.item || "empty";
      if (at) desk.times.push({ key, ms: performance.timeOrigin + performance.now() - at, path: desk.path, put: performance.timeOrigin + t0 - at, decoded });
      desk.path = "page";
      item.dataset.shown = "true";
      resolve();
    })); };
    const img = item.querySelector("img.page-scan");
    if (!img) { done(); return; }
    // Shown when it is decoded (or failed to load).
    img.decode().then(done, done);
  });
}

// screenSized is a page image's URL at the width the sheet on screen draws it, in device
// pixels rounded up to 400 (at least 800; the full image when that is as wide): fewer
// pixels to decode and to scale than the 1600 of a page load. The next item's shape is
// read from its page when it is there.
function screenSized(url, doc) {
  const svg = document.querySelector("svg.page-image");
  const vb = ((doc && doc.querySelector("svg.page-image")) || svg || {}).viewBox;
  if (!svg || !vb || !vb.baseVal || !vb.baseVal.width || !svg.clientWidth) return url;
  const { width: w, height: h } = vb.baseVal;
  const drawn = Math.min(svg.clientWidth, (window.innerHeight - 90) * w / h) * (window.devicePixelRatio || 1);
  const want = Math.max(800, Math.ceil(drawn / 400) * 400);
  const u = new URL(url, location.href);
  if (want >= w) u.searchParams.delete("width");
  else u.searchParams.set("width", String(want));
  return u.pathname + u.search;
}

// samePageImage: two URLs of one page image (the same page and version), whatever width.
function samePageImage(a, b) {
  const x = new URL(a, location.href), y = new URL(b, location.href);
  return x.pathname === y.pathname && x.searchParams.get("v") === y.searchParams.get("v");
}

async function preloadNext(key) {
  const p = { key: "", version: 0, html: "", doc: null, img: null, ready: false };
  desk.preload = p;
  try {
    const res = await fetch(`/review/${key}/next`, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!res.ok) return;
    const n = await res.json();
    if (desk.preload !== p || !n.key) return;
    Object.assign(p, { key: n.key, version: n.version, html: n.html || "" });
    // The item parsed once, now: the swap adopts this very page, it does not parse again.
    if (p.html) p.doc = new DOMParser().parseFromString(p.html, "text/html");
    // Its page image (the display rendition) fetched and decoded now, in an element of
    // this document that the swap puts in place as it is: nothing is decoded on the key.
    p.img = new Image();
    p.img.src = screenSized(n.image, p.doc);
    const thumbs = p.doc ? [...p.doc.querySelectorAll("main img[src]:not(.page-scan)")].map((i) => {
      const t = new Image();
      t.src = i.getAttribute("src");
      return t;
    }) : [];
    // Kept by the browser too (private, for the session), should the answer be shown.
    await Promise.all([p.img, ...thumbs].map((i) => i.decode().catch(() => {})));
    p.ready = true;
  } catch (_) { /* the decision fetches what it needs */ }
}

// deskSubmit sends a decision or a skip without leaving the page. Steps that decide
// nothing (re-score, pick, back) stay plain form submissions. The preloaded item is shown
// at once; keys wait until the server has answered (a refused decision brings its item
// back, with why), and the answer adds what the decision did, with its undo.
async function deskSubmit(e) {
  const form = e.target;
  if (e.defaultPrevented || !(form.id === "decision" || form.id === "skip-form") || !document.getElementById("review-item")) return;
  const b = e.submitter;
  if (form.id === "decision" && (!b || ["rescore", "back"].includes(b.value) || b.value.startsWith("pick:"))) return;
  e.preventDefault();
  const body = new URLSearchParams(new FormData(form, b));
  const item = document.getElementById("review-item");
  const from = item ? item.dataset.item : "";
  const p = desk.preload;
  const value = form.id === "decision" ? b.value : "skip";
  // A run's next item is after the run, a split stays: neither shows the preload.
  const early = p && p.ready && p.html && !value.startsWith("run:") && value !== "split";
  if (p && p.key && p.html) body.set("preloaded", `${p.key}/${p.version}`);
  if (early) {
    desk.path = "preloaded";
    showItem(p.doc || p.html, p.key, "", { from, files: /^(confirm|assign):|^continuation$/.test(value), later: true, img: p.img });
    sent = true; // until the answer
    document.body.dataset.pending = "true";
  }
  let ans;
  try {
    const res = await fetch(form.action, {
      method: "POST", body, credentials: "same-origin",
      headers: { "X-Chartscan-Desk": "1", Accept: "application/json" },
    });
    ans = await res.json();
    if (!res.ok) throw new Error(ans.error || `the server answered ${res.status}`);
  } catch (err) {
    delete document.body.dataset.pending;
    if (early) { location.assign(`/review/${from}`); return; } // show where it stands
    sent = false;
    say(`Nothing was sent: ${err.message}. Try the key again.`);
    return;
  }
  delete document.body.dataset.pending;
  if (early && ans.use_preloaded) {
    if (ans.outcome) {
      const tpl = document.createElement("template");
      tpl.innerHTML = ans.outcome;
      const at = document.querySelector("main .panel") || document.querySelector("main");
      at.prepend(tpl.content);
      setupUndo();
    }
    sent = false;
    const onScreen = document.getElementById("review-item");
    desk.shownP.then(() => { if (document.getElementById("review-item") === onScreen && !desk.preload) preloadNext(p.key); });
    return;
  }
  desk.path = ans.use_preloaded && p && p.html ? "preloaded" : "answer";
  if (desk.path === "preloaded") showItem(p.doc || p.html, ans.next, ans.outcome, { from, files: /^(confirm|assign):|^continuation$/.test(value), img: p.img });
  else showItem(ans.html, ans.next, "", { img: p && p.img });
}

// showItem puts an item (a whole review page: its HTML, or parsed already) in place of
// the one on screen. The page image preloaded and decoded (after.img) goes in as it is
// when it is the one the item shows.
function showItem(page, key, outcome, after) {
  const doc = typeof page === "string" ? new DOMParser().parseFromString(page, "text/html") : page;
  const main = doc.querySelector("main");
  const scan = main.querySelector("img.page-scan");
  const img = after && after.img;
  if (scan && img && img.complete && img.naturalWidth && samePageImage(img.getAttribute("src"), scan.getAttribute("src"))) {
    for (const a of scan.attributes) if (a.name !== "src") img.setAttribute(a.name, a.value);
    scan.replaceWith(img);
  }
  // Preloaded before the decision: the next page of the same document can now be a
  // continuation if the decision filed the page before it (as the server would show it).
  const [fromDoc, fromPage] = ((after && after.from) || "").split("/");
  const [doc2, page2] = (key || "").split("/");
  const c = main.querySelector("#continuation");
  if (after && after.files && c && fromDoc === doc2 && Number(page2) === Number(fromPage) + 1 && c.dataset.prev === "unfiled") {
    c.disabled = false;
    delete c.dataset.why;
  }
  if (outcome) {
    for (const o of main.querySelectorAll("#outcome")) o.remove();
    const tpl = document.createElement("template");
    tpl.innerHTML = outcome;
    const at = main.querySelector(".panel") || main;
    at.prepend(tpl.content);
  }
  const isItem = !!main.querySelector("#review-item");
  document.querySelector("main").replaceWith(document.adoptNode(main));
  document.title = doc.title;
  const count = doc.getElementById("queue-count"), mine = document.getElementById("queue-count");
  if (count && mine) mine.textContent = count.textContent;
  else if (mine) mine.remove();
  history.pushState(null, "", key && isItem ? `/review/${key}` : "/review");
  sent = false;
  setupItem(after && after.later);
}

// searchInPlace runs the EMPI search of a review item and puts the results under its
// candidates: the page stays, and so do the reviewer's corrections. With results on
// screen the number keys choose among them; the focus goes to their heading, never to
// an action.
async function searchInPlace(e) {
  const form = e.currentTarget;
  e.preventDefault();
  // The "/" that opened the search may have reached the field (a key sent by a driver
  // rather than a keyboard): no search starts with it.
  const input = form.querySelector("#empi-q");
  const q = input.value.trim().replace(/^\/+/, "");
  input.value = q;
  let ans;
  try {
    const res = await fetch(`${form.dataset.inplace}?q=${encodeURIComponent(q)}`, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    ans = await res.json();
    if (!res.ok) throw new Error(ans.error || `the server answered ${res.status}`);
  } catch (err) {
    say(`The search failed: ${err.message}.`);
    return;
  }
  const found = document.getElementById("found");
  found.innerHTML = ans.html;
  const hidden = document.querySelector('#decision input[name="q"]');
  if (hidden) hidden.value = q;
  for (const c of document.querySelectorAll("button.candidate")) {
    const kbd = c.querySelector("kbd");
    if (ans.results > 0 && c.dataset.key) { c.dataset.keyOff = c.dataset.key; delete c.dataset.key; if (kbd) kbd.hidden = true; }
    if (ans.results === 0 && c.dataset.keyOff) { c.dataset.key = c.dataset.keyOff; delete c.dataset.keyOff; if (kbd) kbd.hidden = false; }
  }
  const h = document.getElementById("found-heading");
  if (h) h.focus(); else document.activeElement.blur();
}

document.addEventListener("DOMContentLoaded", () => { initUpload(); initBatchPage(); initKeys(); });
