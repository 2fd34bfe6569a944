// fermixnet serve: the page. Plain JavaScript, no external assets (works offline).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { blob: null, image: null, result: null, seed: 0, classes: [] };

function setStatus(text) { $("status").textContent = text; }
function showError(text) {
  $("error").hidden = !text;
  $("error").textContent = text || "";
}
function pct(p) { return (100 * p).toFixed(1) + "%"; }

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function loadModel() {
  const res = await fetch("/api/model");
  const info = await res.json();
  state.classes = info.classes;
  const heads = info.mid_branch ? "high + mid-level heads" : "one head";
  $("model-info").innerHTML = "";
  $("model-info").append(
    "trunk ", el("b", "", info.arch), ` · ${info.classes.length} classes · ${heads} · `,
    `${info.backend} · detector ${info.detector}`);
  if (!info.mid_branch) {
    $("faces-hint").textContent = "This model has no mid-level branch: one head decides.";
    for (const cls of ["fused", "mid"]) document.querySelector(`.swatch.${cls}`).parentNode.remove();
  }
  const select = $("occluder-select");
  const groups = [["Regions", info.occlusion_types],
    ["Realistic occluders", info.occluders.filter((o) => !info.occlusion_types.includes(o))]];
  for (const [name, items] of groups) {
    const group = el("optgroup");
    group.label = name;
    for (const item of items) {
      const opt = el("option", "", item);
      opt.value = item;
      group.append(opt);
    }
    select.append(group);
  }
  select.value = info.occluders.includes("mask") ? "mask" : info.occluders[0];
}

async function predict(occluder) {
  const form = new FormData();
  form.append("file", state.blob, state.blob.name || "upload.png");
  const query = occluder ? `?occluder=${encodeURIComponent(occluder)}&seed=${state.seed}` : "";
  const res = await fetch("/api/predict" + query, { method: "POST", body: form });
  const body = await res.json().catch(() => ({ detail: `HTTP ${res.status}` }));
  if (!res.ok) throw new Error(typeof body.detail === "string" ? body.detail
    : JSON.stringify(body.detail));
  return body;
}

function bars(probs, top) {
  const box = el("div", "bars");
  for (const name of state.classes) {
    const row = el("div", name === top ? "bar-row top" : "bar-row");
    const track = el("div", "track");
    const fill = el("div", "fill");
    fill.style.width = pct(probs[name]);
    track.append(fill);
    row.append(el("span", "name", name), track, el("span", "val", pct(probs[name])));
    box.append(row);
  }
  return box;
}

function headChips(heads) {
  const box = el("div", "heads");
  const names = { high: "High-level head", mid: "Mid-level head" };
  for (const key of Object.keys(heads)) {
    const chip = el("span", `head ${key}`, `${names[key]}: `);
    chip.append(el("b", "", heads[key].label), ` ${pct(heads[key].score)}`);
    box.append(chip);
  }
  return box;
}

function faceThumb(face, size) {
  const [x0, y0, x1, y1] = face.box;
  const mx = 0.1 * (x1 - x0), my = 0.1 * (y1 - y0);
  const sx = Math.max(0, x0 - mx), sy = Math.max(0, y0 - my);
  const sw = Math.min(state.image.width, x1 + mx) - sx, sh = Math.min(state.image.height, y1 + my) - sy;
  const canvas = el("canvas");
  canvas.width = size; canvas.height = Math.round(size * sh / sw);
  canvas.getContext("2d").drawImage(state.image, sx, sy, sw, sh, 0, 0, canvas.width, canvas.height);
  return canvas;
}

function prediction(title, label, score, probs, heads) {
  const box = el("div", "prediction");
  const head = el("div", "face-title");
  if (title) head.append(el("span", "", title));
  head.append(el("span", "label", label), el("span", "score", pct(score)));
  box.append(head, bars(probs, label), headChips(heads));
  return box;
}

function drawStage() {
  const canvas = $("stage"), img = state.image, ctx = canvas.getContext("2d");
  canvas.width = img.width; canvas.height = img.height;
  ctx.drawImage(img, 0, 0);
  const faces = state.result ? state.result.results[0].faces : [];
  const w = Math.max(2, Math.round(Math.max(img.width, img.height) / 250));
  ctx.font = `600 ${Math.max(12, 6 * w)}px system-ui, sans-serif`;
  faces.forEach((f, i) => {
    const [x0, y0, x1, y1] = f.box;
    ctx.lineWidth = w; ctx.strokeStyle = "#22c55e";
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    ctx.fillStyle = "#ef4444";
    for (const [x, y] of f.landmarks || []) {
      ctx.beginPath(); ctx.arc(x, y, 1.3 * w, 0, 2 * Math.PI); ctx.fill();
    }
    const text = `${i + 1} · ${f.label} ${pct(f.score)}`;
    const th = Math.max(12, 6 * w) + 6, tw = ctx.measureText(text).width + 10;
    const ty = Math.max(0, y0 - th);
    ctx.fillStyle = "rgba(17, 24, 39, 0.85)"; ctx.fillRect(x0, ty, tw, th);
    ctx.fillStyle = "#fff"; ctx.fillText(text, x0 + 5, ty + th - 6);
  });
}

function renderFaces() {
  const list = $("faces");
  list.innerHTML = "";
  state.result.results[0].faces.forEach((f, i) => {
    const card = el("div", "face-card");
    card.dataset.face = i;
    card.append(faceThumb(f, 192),
      prediction(`Face ${i + 1}:`, f.label, f.score, f.probs, f.heads));
    list.append(card);
  });
}

function renderOcclusion(occ) {
  const box = $("occlusion");
  box.innerHTML = "";
  const clean = state.result.results[0].faces;
  occ.faces.forEach((o, i) => {
    const f = clean[i], pair = el("div", "pair");
    pair.dataset.face = i;
    const left = el("div", "side clean"), right = el("div", "side occluded");
    left.append(el("h3", "", `Face ${i + 1} · clean`), faceThumb(f, 256),
      prediction("", f.label, f.score, f.probs, f.heads));
    const img = el("img");
    img.src = o.image; img.alt = `face ${i + 1} with ${o.occluder}`;
    right.append(el("h3", "", `Face ${i + 1} · ${o.occluder} (${occ.type})`), img,
      prediction("", o.label, o.score, o.probs, o.heads));
    const kept = o.label === f.label;
    const verdict = el("div", `verdict ${kept ? "kept" : "changed"}`, kept
      ? `Prediction kept: ${f.label}` : `Prediction changed: ${f.label} → ${o.label}`);
    pair.append(left, right, verdict);
    box.append(pair);
  });
}

async function run(task, label) {
  showError("");
  setStatus(label);
  try { await task(); setStatus(""); } catch (err) { setStatus(""); showError(err.message); }
}

function useBlob(blob) {
  stopWebcam();
  state.blob = blob; state.result = null; state.seed = 0;
  $("occlude-button").disabled = true; $("reroll-button").disabled = true;
  $("occlusion").innerHTML = "";
  const img = new Image();
  img.onload = () => {
    state.image = img;
    $("drop-hint").hidden = true; $("stage").hidden = false;
    $("drop-zone").classList.add("has-image");
    drawStage();
    run(async () => {
      state.result = await predict(null);
      drawStage(); renderFaces();
      $("occlude-button").disabled = false;
    }, "predicting…");
  };
  img.onerror = () => showError("the browser cannot display this file; is it an image?");
  img.src = URL.createObjectURL(blob);
}

function occludeNow() {
  if (!state.result) return;
  run(async () => {
    const body = await predict($("occluder-select").value);
    renderOcclusion(body.occlusion);
    $("reroll-button").disabled = false;
  }, "occluding…");
}

// --- live camera: frames streamed to /api/frame -----------------------------------------------
// Each of LIVE_LOOPS loops grabs the camera's current frame, posts it and waits for the answer;
// frames the server cannot keep up with are never sent (dropped), and an answer older than one
// already drawn is ignored. Two loops keep two server workers busy.
const LIVE_SIDE = 640, LIVE_LOOPS = 2;
const live = { on: false, sent: 0, drawn: -1, frames: 0, times: [], ms: 0, occluder: null,
  seed: 0 };
let stream = null;

function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

function grabFrame() {
  const video = $("webcam");
  const scale = Math.min(1, LIVE_SIDE / Math.max(video.videoWidth, video.videoHeight));
  const canvas = el("canvas");
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  return canvas;
}

async function postFrame(canvas) {
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
  const query = live.occluder
    ? `?occluder=${encodeURIComponent(live.occluder)}&seed=${live.seed}&images=true` : "";
  const res = await fetch("/api/frame" + query,
    { method: "POST", body: blob, headers: { "Content-Type": "image/jpeg" } });
  const body = await res.json().catch(() => ({ detail: `HTTP ${res.status}` }));
  if (!res.ok) throw new Error(typeof body.detail === "string" ? body.detail
    : JSON.stringify(body.detail));
  return body;
}

function showLive(canvas, body, ms) {
  state.image = canvas; state.result = body;
  // The analysed frame with its boxes replaces the video, which keeps playing out of sight.
  $("webcam").classList.add("behind"); $("stage").hidden = false; $("drop-hint").hidden = true;
  $("drop-zone").classList.add("has-image");
  drawStage();
  if (body.results[0].faces.length) renderFaces();
  else $("faces").innerHTML = '<p class="empty">No face in view.</p>';
  if (body.occlusion) renderOcclusion(body.occlusion);
  $("occlude-button").disabled = false; $("reroll-button").disabled = !live.occluder;
  const now = performance.now();
  live.times = live.times.filter((t) => now - t < 2000).concat([now]);
  live.ms = ms; live.frames += 1;
  const fps = live.times.length > 1 ? (live.times.length - 1) * 1000 / (now - live.times[0]) : 0;
  const info = $("live-info");
  info.hidden = false; info.dataset.frames = live.frames;
  info.textContent = `live · ${fps.toFixed(1)} frames/s · ${Math.round(ms)} ms per frame`;
}

async function liveLoop() {
  const video = $("webcam");
  while (live.on) {
    if (!video.videoWidth) { await sleep(50); continue; }
    const seq = live.sent++, canvas = grabFrame(), start = performance.now();
    try {
      const body = await postFrame(canvas);
      if (live.on && seq > live.drawn) {
        live.drawn = seq; showError("");
        showLive(canvas, body, performance.now() - start);
      }
    } catch (err) {
      if (live.on) { showError(err.message); await sleep(500); }
    }
  }
}

// "Stop webcam": the last analysed frame stays, as a photo the occlusion panel can use.
function freezeLive() {
  const frame = live.on && state.result ? state.image : null;
  stopWebcam();
  if (!frame) return;
  frame.toBlob((blob) => {
    if (state.image !== frame) return;  // another photo came meanwhile
    blob.name = "webcam.jpg"; state.blob = blob;
  }, "image/jpeg", 0.95);
}

async function startWebcam() {
  if (stream) { freezeLive(); return; }
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true });
  } catch (err) { showError(`webcam unavailable: ${err.message}`); return; }
  const video = $("webcam");
  video.srcObject = stream; video.hidden = false;
  $("stage").hidden = true; $("drop-hint").hidden = true;
  $("snapshot-button").hidden = false; $("webcam-button").textContent = "Stop webcam";
  Object.assign(live, { on: true, sent: 0, drawn: -1, frames: 0, times: [], occluder: null,
    seed: 0 });
  $("occlusion").innerHTML = "";
  for (let i = 0; i < LIVE_LOOPS; i++) liveLoop();
}
function stopWebcam() {
  live.on = false; live.occluder = null;
  if (stream) stream.getTracks().forEach((t) => t.stop());
  stream = null; $("webcam").hidden = true; $("webcam").classList.remove("behind");
  $("snapshot-button").hidden = true;
  $("live-info").hidden = true; $("webcam-button").textContent = "Use webcam";
}
function snapshot() {
  const video = $("webcam"), canvas = el("canvas");
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  canvas.toBlob((blob) => { blob.name = "webcam.png"; useBlob(blob); }, "image/png");
}

// The occlusion panel: on a photo, one request; on the live view, every following frame.
function occlude(seed) {
  if (live.on) {
    live.occluder = $("occluder-select").value; live.seed = seed;
    return;
  }
  state.seed = seed; occludeNow();
}

function wire() {
  for (const id of ["file-input", "file-input-2"]) {
    $(id).addEventListener("change", (e) => { if (e.target.files[0]) useBlob(e.target.files[0]); });
  }
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("dragging"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault(); zone.classList.remove("dragging");
    if (e.dataTransfer.files[0]) useBlob(e.dataTransfer.files[0]);
  });
  $("webcam-button").addEventListener("click", startWebcam);
  $("snapshot-button").addEventListener("click", snapshot);
  $("occlude-button").addEventListener("click", () => occlude(0));
  $("reroll-button").addEventListener("click", () => occlude((live.on ? live.seed : state.seed) + 1));
  $("occluder-select").addEventListener("change", () => {
    if (live.on ? live.occluder : state.result) occlude(0);
  });
}

wire();
loadModel().catch((err) => showError(`cannot reach the server: ${err.message}`));
