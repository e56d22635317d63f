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

// The review queue is keyboard-first: every action has a key, shown on its button.
function initReview() {
  const item = document.getElementById("review-item");
  if (!item) return;
  const typing = (t) => t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT");
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (typing(e.target)) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    const k = e.key.toLowerCase();
    if (k === "/") { e.preventDefault(); document.getElementById("empi-q").focus(); return; }
    if (k === "e") { e.preventDefault(); document.querySelector(".fields input[data-field]").focus(); return; }
    const target = document.querySelector(`[data-key="${CSS.escape(k)}"]`);
    if (target && !target.disabled) { e.preventDefault(); target.click(); }
  });
  // Preload nothing else: the next item is one redirect away and renders at once.
}

document.addEventListener("DOMContentLoaded", () => { initUpload(); initBatchPage(); initReview(); });
