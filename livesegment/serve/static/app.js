// The browser view: polls the run's state, renders figures and detections, posts controls.
// No build step, no library: the page must work offline and load nothing from the internet.
"use strict";

const token = new URLSearchParams(location.search).get("token");
const POLL_MS = 300;
const $ = (id) => document.getElementById(id);

// A control shows the server's value only when that value changes, so a click is not undone
// by a poll that comes before the run has applied it (controls apply between frames).
const seen = {};
function changed(key, value) {
  const text = JSON.stringify(value);
  if (seen[key] === text) return false;
  seen[key] = text;
  return true;
}

function authorised(init = {}) {
  const headers = new Headers(init.headers || {});
  if (token) headers.set("Authorization", `token ${token}`);
  return { ...init, headers, cache: "no-store" };
}

async function control(body) {
  const error = $("control-error");
  try {
    const answer = await fetch("control", authorised({
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    }));
    if (!answer.ok) {
      const detail = await answer.json().catch(() => ({}));
      throw new Error(detail.error || `${answer.status} ${answer.statusText}`);
    }
    error.hidden = true;
  } catch (problem) {
    error.textContent = `Not applied: ${problem.message}`;
    error.hidden = false;
  }
}

function fps(value) {
  return `${value.toFixed(1)} FPS`;
}

// A carried frame was not inferred: the model's time is that of the latest inferred one.
let inferenceMs = null;

function renderHud(state) {
  const hud = state.hud || {};
  const frame = state.frame;
  if (frame && !frame.carried) inferenceMs = frame.inference_ms;
  $("hud-inference").textContent =
    hud.inference_fps === undefined ? "–" :
    fps(hud.inference_fps) + (inferenceMs === null ? "" : ` (${Math.round(inferenceMs)} ms)`);
  $("hud-capture").textContent = hud.capture_fps === undefined ? "–" : fps(hud.capture_fps);
  $("hud-latency").textContent = frame ? `${Math.round(frame.latency_ms)} ms` : "–";
  $("hud-dropped").textContent = hud.dropped === undefined ? "–" : String(hud.dropped);
  $("hud-threshold").textContent =
    hud.threshold === undefined ? "–" : hud.threshold.toFixed(2);
  $("hud-frame").textContent = frame
    ? `#${frame.index} · ${frame.time_s.toFixed(2)} s${frame.carried ? " · carried" : ""}`
    : "waiting…";
  const unique = $("hud-unique");
  unique.hidden = !hud.unique_objects;
  unique.textContent = hud.unique_objects || "";
}

function renderDetections(state) {
  const list = $("detections");
  const empty = $("empty-reason");
  const frame = state.frame;
  const detections = frame ? frame.detections : [];
  list.replaceChildren(...detections.map((detection) => {
    const item = document.createElement("li");
    item.dataset.class = detection.class;
    const track = document.createElement("span");
    track.className = "track";
    track.textContent = detection.track_id === null ? "" : `#${detection.track_id}`;
    const name = document.createElement("span");
    name.className = "class";
    name.textContent = detection.class;
    const bar = document.createElement("span");
    bar.className = "bar-score";
    const fill = document.createElement("span");
    fill.style.width = `${Math.round(detection.score * 100)}%`;
    bar.append(fill);
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = detection.score.toFixed(2);
    item.append(track, name, bar, score);
    return item;
  }));
  $("detections-count").textContent = frame ? `(${detections.length})` : "";
  if (frame && detections.length === 0) {
    empty.textContent = `No detections: ${frame.empty_reason || "nothing found"}`;
    empty.hidden = false;
  } else {
    empty.hidden = true;
  }
}

function buildClasses(names) {
  const box = $("classes");
  if (box.childElementCount) return;
  for (const name of names) {
    const label = document.createElement("label");
    label.className = "chip";
    const input = document.createElement("input");
    input.type = "checkbox";
    input.value = name;
    input.checked = true;
    input.addEventListener("change", () => {
      const kept = [...box.querySelectorAll("input:checked")].map((box) => box.value);
      control({ classes: kept });
    });
    label.append(input, ` ${name}`);
    box.append(label);
  }
}

function renderControls(state) {
  const controls = state.controls;
  if (!controls) return;
  buildClasses(state.all_classes);
  if (changed("threshold", controls.threshold)) {
    $("threshold").value = controls.threshold;
    $("threshold-value").textContent = controls.threshold.toFixed(2);
  }
  if (changed("classes", controls.classes)) {
    const kept = controls.classes === null ? null : new Set(controls.classes);
    for (const input of $("classes").querySelectorAll("input")) {
      input.checked = kept === null || kept.has(input.value);
    }
  }
  for (const name of ["boxes", "labels", "masks"]) {
    if (changed(name, controls[name])) $(`draw-${name}`).checked = controls[name];
  }
  const pause = $("pause");
  pause.textContent = controls.paused ? "Resume" : "Pause";
  pause.setAttribute("aria-pressed", String(controls.paused));

  const recording = state.recording;
  const record = $("record");
  record.disabled = !recording.available;
  record.textContent = recording.on ? "Stop recording" : "Record";
  record.setAttribute("aria-pressed", String(recording.on));
  const file = $("record-file");
  if (recording.on) {
    file.textContent = recording.file ? `Recording to ${recording.file}` : "Starting…";
  } else if (recording.files.length) {
    file.textContent = `Saved on the server: ${recording.files.join(", ")}`;
  }
  file.hidden = !recording.on && recording.files.length === 0;
}

function renderRunState(state) {
  const pill = $("run-state");
  const value = !state.running ? "ended" : state.controls && state.controls.paused ? "paused" : "live";
  pill.dataset.state = value;
  pill.textContent = value;
  const note = $("stage-note");
  note.hidden = state.running;
  note.textContent = state.running ? "" : "The run has ended: this is its last frame.";
}

let offline = false;
async function poll() {
  try {
    const answer = await fetch("state", authorised());
    if (!answer.ok) throw new Error(`${answer.status}`);
    const state = await answer.json();
    if (offline) {
      offline = false;
      startVideo();  // the stream may have dropped with the connection
    }
    renderRunState(state);
    renderHud(state);
    renderDetections(state);
    renderControls(state);
    if (!state.running) return;  // nothing will change any more
  } catch (problem) {
    offline = true;
    const pill = $("run-state");
    pill.dataset.state = "offline";
    pill.textContent = "not reachable";
  }
  setTimeout(poll, POLL_MS);
}

function wire() {
  const slider = $("threshold");
  slider.addEventListener("input", () => {
    $("threshold-value").textContent = Number(slider.value).toFixed(2);
  });
  slider.addEventListener("change", () => control({ threshold: Number(slider.value) }));
  for (const name of ["boxes", "labels", "masks"]) {
    const box = $(`draw-${name}`);
    box.addEventListener("change", () => control({ [name]: box.checked }));
  }
  $("pause").addEventListener("click", () => {
    control({ paused: $("pause").getAttribute("aria-pressed") !== "true" });
  });
  $("record").addEventListener("click", () => control({ record: "toggle" }));
  // An endless MJPEG response would hold the page's load event (and the tab's spinner)
  // forever if it started with the page, so it starts once the page has loaded.
  if (document.readyState === "complete") startVideo();
  else window.addEventListener("load", startVideo);
  poll();
}

function startVideo() {
  $("video").src = `stream.mjpg${token ? `?token=${encodeURIComponent(token)}` : ""}`;
}

wire();
