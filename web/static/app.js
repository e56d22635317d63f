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
function initKeys() {
  const item = document.getElementById("review-item") || document.getElementById("qa-item");
  if (!item && !document.getElementById("queue-empty") && !document.getElementById("qa-empty")) return;
  const typing = (t) => t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT");
  const say = (msg) => {
    const m = document.getElementById("key-message");
    if (!m) return;
    m.textContent = "";
    // A fresh text node after the region emptied is announced even when the text repeats.
    setTimeout(() => { m.textContent = msg; }, 50);
  };
  // A form is on its way: later keys would act on a page that is leaving, and a second
  // submission (a key's and the browser's own for the same Enter) is dropped.
  let sent = false;
  document.addEventListener("submit", (e) => {
    if (sent) { e.preventDefault(); return; }
    sent = true;
  }, true);
  window.addEventListener("pageshow", () => { sent = false; });
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
    if (target) { target.click(); return; }
    say(targets[0].dataset.why || "That key is not available here.");
  });
  // Undo lasts a minute: then its key says so instead.
  const undo = document.getElementById("undo");
  if (undo) {
    setTimeout(() => {
      undo.disabled = true;
      undo.dataset.why = "Too late to undo: a decision can be undone for a minute after it is made.";
    }, Number(undo.dataset.undoLeft || 0) * 1000);
  }
  // After re-scoring, a search or a pick, focus goes to what changed — never to an action.
  // A new item: focus on its heading, which a screen reader reads out.
  const focus = document.querySelector("[data-focus]") || document.getElementById("item-heading");
  if (focus) focus.focus();
}

document.addEventListener("DOMContentLoaded", () => { initUpload(); initBatchPage(); initKeys(); });
