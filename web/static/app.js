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
//
// The preloaded item is staged: laid out and painted in this document, in the grid cell
// of the item on screen, transparent and inert, with its ids and keys set aside (see
// stage). The key that decides only removes the item on screen and uncovers the staged
// one (see flip): nothing is parsed, styled from scratch or laid out on the key.
const desk = {
  preload: null,   // {key, version, html, doc, img, staged, title, count, ready} of the item after this one
  keyAt: 0,        // when the key of the decision on the way was pressed (epoch ms)
  keyRun: 0,       // when the page's key handler began to run for it (epoch ms)
  path: "page",    // how the item on its way came: "preloaded", "answer" (sent with the decision's answer), "page"
  times: [],       // {key, ms, path, input, put, decoded}: key press to the next item fully shown; of it, key to the handler, key to the item in place, then to its image decoded
  shownP: null,    // settles once the item on screen is fully shown
};
window.chartscanDesk = desk;

// liveMain is the page's <main> on screen: not the staged next item.
const liveMain = () => document.querySelector("main:not(.desk-staged)");

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
  // Leaving the page: a decision held back until its next item is on screen goes out
  // now (see deskSubmit), and the time of a key that left it goes to the next page,
  // which counts its own showing from there (see shown).
  window.addEventListener("pagehide", () => {
    if (sendNow) sendNow(true);
    if (desk.keyAt) try { sessionStorage.setItem("deskKeyAt", String(desk.keyAt)); } catch (_) { /* private mode */ }
  });
  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (sent) { hold(e); return; }
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
    // Only the item on screen answers keys: the staged one has none (its data-key are set
    // aside), and it is searched for none either.
    const main = liveMain();
    const targets = main ? [...main.querySelectorAll(`[data-key="${CSS.escape(k)}"]`)] : [];
    if (!targets.length) return;
    e.preventDefault();
    const target = targets.find((x) => !x.disabled);
    if (target) {
      desk.keyAt = performance.timeOrigin + e.timeStamp;
      desk.keyRun = performance.timeOrigin + performance.now();
      target.click();
      return;
    }
    say(targets[0].dataset.why || "That key is not available here.");
  }

  // hold keeps one key pressed on an item that was shown before the server answered the
  // decision before it (body[data-pending]): deskSubmit lets it act once the answer is
  // in, on that item, and only if the server let the item stand. A field still takes its
  // typing; keys while a page is leaving are dropped, as ever.
  function hold(e) {
    if (!document.body.dataset.pending || held || typing(e.target)) return;
    const k = e.key.toLowerCase();
    const main = liveMain();
    if (!(k === "/" || k === "e" || (main && main.querySelector(`[data-key="${CSS.escape(k)}"]`)))) return;
    e.preventDefault();
    const item = document.getElementById("review-item");
    held = { key: e.key, timeStamp: e.timeStamp, item: item && item.dataset.item };
  }
  releaseHeld = (item) => {
    const h = held;
    held = null;
    if (!h) return;
    if (h.item !== item) { say(`The key ${h.key.toUpperCase()} was not used: the item changed before the server answered.`); return; }
    onKey({ key: h.key, timeStamp: h.timeStamp, target: document.activeElement, preventDefault() {} });
  };
  document.addEventListener("keydown", onKey);
  setupItem();
}

// held is the key pressed on an item shown before the server answered the decision
// before it; releaseHeld(the item on screen now) lets it act, or drops it with why.
let held = null;
let releaseHeld = () => {};

// setupItem readies the item on screen: its undo's minute, the focus, the search in
// place, and the preload of the item after it. It runs on a page load and after the
// desk put a new item in place.
function setupItem(later) {
  setupUndo();
  const search = document.getElementById("empi-search");
  if (search) search.addEventListener("submit", searchInPlace);
  // After re-scoring, a search or a pick, focus goes to what changed — never to an action.
  // A new item: focus on its heading, which a screen reader reads out.
  const main = liveMain();
  const focus = (main && main.querySelector("[data-focus]")) || document.getElementById("item-heading");
  if (focus) focus.focus();
  desk.shownP = shown();
  const item = document.getElementById("review-item");
  desk.preload = null;
  unstage();
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
// press that asked for it (the benchmark reads desk.times). Then the work put off until
// the item is drawn (see soon), before the item counts as shown (data-shown).
function shown() {
  const item = document.getElementById("review-item") || document.getElementById("queue-empty");
  if (!item) return Promise.resolve();
  let at = desk.keyAt;
  if (!at) { try { at = Number(sessionStorage.getItem("deskKeyAt") || 0); } catch (_) { at = 0; } }
  const run = desk.keyRun;
  desk.keyAt = 0;
  desk.keyRun = 0;
  try { sessionStorage.removeItem("deskKeyAt"); } catch (_) { /* private mode */ }
  const t0 = performance.now();
  let decoded = 0;
  return new Promise((resolve) => {
    const done = () => { decoded = performance.now() - t0; requestAnimationFrame(() => requestAnimationFrame(() => {
      const key = item.dataset.item || "empty";
      if (at) desk.times.push({ key, ms: performance.timeOrigin + performance.now() - at, path: desk.path, input: run ? run - at : 0, put: performance.timeOrigin + t0 - at, decoded });
      runSoon();
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

// soon puts off work a swap needs but the item does not (the title, the address, the
// queue's count in the header) until the item is on screen: shown runs it, or a timer
// (a hidden page draws no frames). Setting the address alone takes milliseconds.
let soonFns = [];
function soon(fn) {
  soonFns.push(fn);
  if (soonFns.length === 1) setTimeout(runSoon, 250);
}
function runSoon() {
  const fns = soonFns;
  soonFns = [];
  for (const fn of fns) fn();
}

// screenSized is a page image's URL at the width the sheet on screen draws it, in device
// pixels rounded up to 400 (at least 800; the full image when that is as wide): fewer
// pixels to decode and to scale than the 1600 of a page load. The next item's shape is
// read from its page when it is there.
function screenSized(url, doc) {
  const main = liveMain();
  const svg = main && main.querySelector("svg.page-image");
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
  const p = { key: "", version: 0, html: "", doc: null, img: null, staged: null, title: "", count: null, ready: false };
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
    // Staged only while this item is still the one on screen and no key has come.
    if (desk.preload !== p || sent) return;
    stage(p);
    // Ready once the staged item has been painted too (two frames).
    if (p.staged) await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    p.ready = true;
  } catch (_) { /* the decision fetches what it needs */ }
}

// stage lays the preloaded item out in this document while the reviewer reads the one on
// screen: a second <main> in the same grid cell (html.desk in app.css), transparent and
// inert — no pointer, focus, find or screen reader reaches it — with its own compositing
// layer, so that it is styled, laid out and painted now and the key only uncovers it.
// Its ids, form references and keys are set aside (data-staged-*) so that nothing looking
// up the page by id or by key finds it, and put back when it is shown.
function stage(p) {
  const live = liveMain();
  const from = p.doc && p.doc.querySelector("main");
  if (!live || !from || !from.querySelector("#review-item")) return;
  // Adopted first, then the decoded image put in: an image moved into another document
  // is loaded again.
  const main = document.adoptNode(from);
  const scan = main.querySelector("img.page-scan");
  const img = p.img;
  if (scan && img && img.complete && img.naturalWidth && samePageImage(img.getAttribute("src"), scan.getAttribute("src"))) {
    for (const a of scan.attributes) if (a.name !== "src") img.setAttribute(a.name, a.value);
    scan.replaceWith(img);
  }
  for (const [attr, aside] of stagedAttrs) {
    for (const e of main.querySelectorAll(`[${attr}]`)) {
      e.setAttribute(aside, e.getAttribute(attr));
      e.removeAttribute(attr);
    }
  }
  main.inert = true;
  main.classList.add("desk-staged", "desk-layer");
  document.documentElement.classList.add("desk");
  p.title = p.doc.title;
  const count = p.doc.getElementById("queue-count");
  p.count = count ? count.textContent : null;
  p.doc = null;
  live.after(main);
  p.staged = main;
  // Laid out now, while the reviewer reads, rather than on the key.
  void main.offsetHeight;
}

// stagedAttrs are the attributes a staged item keeps aside: what would find it by id,
// tie its buttons to the forms on screen, or give it keys.
const stagedAttrs = [["id", "data-staged-id"], ["form", "data-staged-form"], ["data-key", "data-staged-key"]];

// unstage removes a staged item that will not be shown.
function unstage() {
  for (const m of document.querySelectorAll("main.desk-staged")) m.remove();
  if (desk.preload) desk.preload.staged = null;
}

// flip shows the staged item of a preload in place of the item on screen: the item on
// screen goes, the staged one gets its ids, form references and keys back and is
// uncovered. Its size and place do not change, so it is not laid out again. (Hiding the
// old item and removing it after the frame measured slower: restyling two items costs
// more than removing one.)
function flip(p, after) {
  const main = p.staged;
  p.staged = null;
  const old = liveMain();
  if (old) old.remove();
  for (const e of main.querySelectorAll("[data-staged-id], [data-staged-form], [data-staged-key]")) {
    for (const [attr, aside] of stagedAttrs) {
      const v = e.getAttribute(aside);
      if (v === null) continue;
      e.setAttribute(attr, v);
      e.removeAttribute(aside);
    }
  }
  mayContinue(main, p.key, after);
  main.classList.remove("desk-staged");
  main.inert = false;
  placed(main, p.key, p.title, p.count, after);
}

// mayContinue: an item preloaded before the decision on the page before it can now be a
// continuation if that decision filed the page (as the server would show it).
function mayContinue(main, key, after) {
  const [fromDoc, fromPage] = ((after && after.from) || "").split("/");
  const [doc2, page2] = (key || "").split("/");
  const c = main.querySelector("#continuation");
  if (after && after.files && c && fromDoc === doc2 && Number(page2) === Number(fromPage) + 1 && c.dataset.prev === "unfiled") {
    c.disabled = false;
    delete c.dataset.why;
  }
}

// placed finishes putting an item on screen: its focus, undo and timing now; its title,
// address and the queue's count once it is drawn.
function placed(main, key, title, count, after) {
  const isItem = !!main.querySelector("#review-item");
  soon(() => {
    if (title) document.title = title;
    const mine = document.getElementById("queue-count");
    if (count != null && mine) mine.textContent = count;
    else if (mine) mine.remove();
    history.pushState(null, "", key && isItem ? `/review/${key}` : "/review");
  });
  setupItem(after && after.later);
}

// sendNow, while a decision waits for its next item to be on screen, sends it at once
// (the page is leaving).
let sendNow = null;

// deskSubmit sends a decision or a skip without leaving the page. Steps that decide
// nothing (re-score, pick, back) stay plain form submissions. The staged item is shown at
// once and the decision sent once it is on screen: the request and the work it starts on
// the server do not compete with drawing it. Keys wait until the server has answered (a
// refused decision brings its item back, with why); the answer adds what the decision
// did, with its undo.
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
  const files = /^(confirm|assign):|^continuation$/.test(value);
  // A run's next item is after the run, a split stays: neither shows the preload.
  const early = !!(p && p.staged && !value.startsWith("run:") && value !== "split");
  if (p && p.key && p.html) body.set("preloaded", `${p.key}/${p.version}`);
  let keepalive = false;
  if (early) {
    desk.path = "preloaded";
    document.body.dataset.pending = "true"; // until the answer is in place
    flip(p, { from, files, later: true });
    sent = true; // until the answer
    keepalive = await new Promise((resolve) => {
      sendNow = resolve;
      desk.shownP.then(() => resolve(false));
      setTimeout(() => resolve(false), 250);
    });
    sendNow = null;
  } else {
    unstage();
  }
  let ans;
  try {
    const res = await fetch(form.action, {
      method: "POST", body, credentials: "same-origin", keepalive,
      headers: { "X-Chartscan-Desk": "1", Accept: "application/json" },
    });
    ans = await res.json();
    if (!res.ok) throw new Error(ans.error || `the server answered ${res.status}`);
  } catch (err) {
    delete document.body.dataset.pending;
    held = null;
    if (early) { location.assign(`/review/${from}`); return; } // show where it stands
    sent = false;
    say(`Nothing was sent: ${err.message}. Try the key again.`);
    return;
  }
  if (early && ans.use_preloaded) {
    // What the decision did goes in above the item once that is on screen: inserted
    // while the item is drawn it would move it.
    await Promise.race([desk.shownP, new Promise((r) => setTimeout(r, 250))]);
    const onScreen = document.getElementById("review-item");
    putOutcome(liveMain(), ans.outcome);
    delete document.body.dataset.pending;
    sent = false;
    releaseHeld(onScreen && onScreen.dataset.item);
    desk.shownP.then(() => { if (document.getElementById("review-item") === onScreen && !desk.preload && !sent) preloadNext(p.key); });
    return;
  }
  delete document.body.dataset.pending;
  releaseHeld(null);
  // Not shown at once (the key came before the preload was staged, or a run or a split):
  // the preloaded item if the server says it stands, else the item the server sent.
  desk.path = ans.use_preloaded && p && (p.doc || p.html) ? "preloaded" : "answer";
  if (desk.path === "preloaded") showItem(p.doc || p.html, ans.next, ans.outcome, { from, files, img: p.img });
  else showItem(ans.html, ans.next, "", { img: p && p.img });
}

// putOutcome puts what the previous decision did (HTML from the server) at the top of an
// item, in place of an older one.
function putOutcome(main, outcome) {
  if (!outcome) return;
  for (const o of main.querySelectorAll("#outcome")) o.remove();
  const tpl = document.createElement("template");
  tpl.innerHTML = outcome;
  const at = main.querySelector(".panel") || main;
  at.prepend(tpl.content);
  if (main.isConnected) setupUndo();
}

// showItem puts an item (a whole review page: its HTML, or parsed already) in place of
// the one on screen, when it was not staged: the decision's answer. The page image
// preloaded and decoded (after.img) goes in as it is when it is the one the item shows.
function showItem(page, key, outcome, after) {
  unstage();
  const doc = typeof page === "string" ? new DOMParser().parseFromString(page, "text/html") : page;
  const main = document.adoptNode(doc.querySelector("main"));
  const scan = main.querySelector("img.page-scan");
  const img = after && after.img;
  if (scan && img && img.complete && img.naturalWidth && samePageImage(img.getAttribute("src"), scan.getAttribute("src"))) {
    for (const a of scan.attributes) if (a.name !== "src") img.setAttribute(a.name, a.value);
    scan.replaceWith(img);
  }
  mayContinue(main, key, after);
  putOutcome(main, outcome);
  liveMain().replaceWith(main);
  const count = doc.getElementById("queue-count");
  sent = false;
  placed(main, key, doc.title, count ? count.textContent : null, after);
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
  // The candidates of the item on screen (looked up by id: a staged item has none).
  const decision = document.getElementById("decision");
  for (const c of decision ? decision.querySelectorAll("button.candidate") : []) {
    const kbd = c.querySelector("kbd");
    if (ans.results > 0 && c.dataset.key) { c.dataset.keyOff = c.dataset.key; delete c.dataset.key; if (kbd) kbd.hidden = true; }
    if (ans.results === 0 && c.dataset.keyOff) { c.dataset.key = c.dataset.keyOff; delete c.dataset.keyOff; if (kbd) kbd.hidden = false; }
  }
  const h = document.getElementById("found-heading");
  if (h) h.focus(); else document.activeElement.blur();
}

document.addEventListener("DOMContentLoaded", () => { initUpload(); initBatchPage(); initKeys(); });
