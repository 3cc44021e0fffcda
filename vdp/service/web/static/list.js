// The job list (live over server-sent events) and the submit form.
import {api, el, fmtBytes, follow, renderProgress, showFlash, stateBadge, TERMINAL, ApiError} from "/web/static/common.js";
import {buildOptions, readOptions} from "/web/static/options.js";

const MAX_STREAMS = 3;  // browsers allow few connections per host: the rest is polled
const streams = new Map();  // job id -> closer
let config = null;

export async function showList() {
  config = await api("/web/api/config");
  document.getElementById("logout").hidden = !config.auth;  // nothing to sign out of
  setUpForm();
  await refresh();
  document.getElementById("list-view").hidden = false;
  setInterval(() => refresh().catch((e) => showFlash(e.message)), 3000);
}

async function refresh() {
  const {jobs} = await api("/v1/jobs?limit=50");
  const list = document.getElementById("jobs");
  document.getElementById("jobs-empty").hidden = jobs.length > 0;
  const seen = new Set();
  for (const job of jobs) {
    seen.add(job.id);
    let card = document.getElementById(`job-${job.id}`);
    if (!card) {
      card = jobCard(job);
      list.append(card);
    }
    list.append(card);  // keeps the server's order (newest first) without rebuilding cards
    if (!streams.has(job.id) && !TERMINAL.has(job.state) && streams.size < MAX_STREAMS) {
      streams.set(job.id, follow(job.id, (s) => update(card, s), () => card.remove()));
    } else if (!streams.has(job.id)) {
      update(card, job);
    }
  }
  for (const card of [...list.children]) {
    const id = card.dataset.id;
    if (!seen.has(id)) { card.remove(); closeStream(id); }
  }
}

function closeStream(id) {
  const close = streams.get(id);
  if (close) { close(); streams.delete(id); }
}

function jobCard(job) {
  const cancel = el("button", {type: "button", class: "cancel", text: "Cancel", "aria-label": `Cancel job ${job.id}`,
    onclick: () => act(job.id, "cancel")});
  const del = el("button", {type: "button", class: "delete danger", text: "Delete", "aria-label": `Delete job ${job.id}`,
    onclick: () => act(job.id, "delete")});
  return el("li", {class: "job", id: `job-${job.id}`, "data-id": job.id},
    el("div", {class: "job-head"},
      el("a", {href: `/jobs/${job.id}`, text: job.id.slice(0, 12), title: job.id}),
      el("span", {class: "slot-state"})),
    el("div", {class: "hint", text: job.input}),
    el("p", {class: "error slot-error", hidden: true}),
    el("div", {class: "slot-progress"}),
    el("div", {class: "actions"}, cancel, del));
}

function update(card, status) {
  card.querySelector(".slot-state").replaceChildren(stateBadge(status.state, status.cancel_requested));
  card.dataset.state = status.state;
  const err = card.querySelector(".slot-error");
  err.textContent = status.error || "";
  err.hidden = !status.error;
  if (status.progress) renderProgress(card.querySelector(".slot-progress"), status);
  const done = TERMINAL.has(status.state);
  card.querySelector(".cancel").disabled = done || !!status.cancel_requested;
  card.querySelector(".delete").disabled = !done;
  if (done) closeStream(status.id);
}

async function act(id, what) {
  showFlash("");
  try {
    if (what === "cancel") await api(`/v1/jobs/${id}/cancel`, {method: "POST"});
    else if (confirm("Delete this job and its outputs?")) await api(`/v1/jobs/${id}`, {method: "DELETE"});
    await refresh();
  } catch (e) {
    showFlash(e.message);
  }
}

function setUpForm() {
  const form = document.getElementById("submit-form");
  const preset = form.preset;
  for (const [name, p] of Object.entries(config.presets)) preset.append(el("option", {value: name, text: name}));
  if (config.presets["depth+matte"]) preset.value = "depth+matte";
  const onPreset = () => {
    const p = config.presets[preset.value];
    document.getElementById("preset-hint").textContent = p ? p.description : "";
    buildOptions(document.getElementById("options"), config.schema, p ? p.spec : {});
  };
  preset.addEventListener("change", onPreset);
  onPreset();
  const roots = config.input_roots;
  document.getElementById("roots-hint").textContent = roots.length
    ? `Allowed folders: ${roots.join(", ")}` : "This gateway allows no server paths: upload a file.";
  document.getElementById("file").insertAdjacentElement("afterend",
    el("p", {class: "hint", text: `Up to ${fmtBytes(config.max_upload_bytes)}.`}));
  const onSource = () => {
    const path = form.source.value === "path";
    document.getElementById("path-field").hidden = !path;
    document.getElementById("upload-field").hidden = path;
  };
  for (const radio of form.querySelectorAll("input[name=source]")) radio.addEventListener("change", onSource);
  onSource();
  form.addEventListener("submit", (e) => { e.preventDefault(); submit(form); });
}

async function submit(form) {
  const error = document.getElementById("submit-error");
  const button = document.getElementById("submit-button");
  error.hidden = true;
  const fail = (text, focus) => {
    error.textContent = text;
    error.hidden = false;
    if (focus) focus.focus();
  };
  const preset = config.presets[form.preset.value];
  let spec;
  try {
    spec = readOptions(document.getElementById("options"), preset.spec);
  } catch (e) {
    return fail(e.message, e.field);
  }
  button.disabled = true;
  try {
    if (form.source.value === "path") {
      if (!form.path.value.trim()) return fail("Enter the path of a video on the server.", form.path);
      spec.input = form.path.value.trim();
    } else {
      const file = form.file.files[0];
      if (!file) return fail("Choose a video file to upload.", form.file);
      if (file.size > config.max_upload_bytes) {
        return fail(`The file is ${fmtBytes(file.size)}; this gateway accepts up to ${fmtBytes(config.max_upload_bytes)}.`, form.file);
      }
      spec.input = (await upload(file)).input;
    }
    const job = await api("/v1/jobs", {method: "POST", json: spec});
    form.file.value = "";
    await refresh();
    document.getElementById(`job-${job.id}`)?.querySelector("a").focus();
  } catch (e) {
    fail(e instanceof ApiError ? e.message : String(e));
  } finally {
    button.disabled = false;
  }
}

/** Upload with a progress bar (XHR: fetch cannot report upload progress). */
function upload(file) {
  const bar = document.getElementById("upload-progress");
  bar.hidden = false;
  bar.value = 0;
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/v1/uploads?filename=${encodeURIComponent(file.name)}`);
    xhr.withCredentials = true;
    xhr.setRequestHeader("X-VDP-CSRF", "1");
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; };
    xhr.onload = () => {
      bar.hidden = true;
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status === 201) resolve(body);
      else reject(new ApiError(xhr.status, body.code, `Upload refused: ${body.detail || `HTTP ${xhr.status}`}`));
    };
    xhr.onerror = () => { bar.hidden = true; reject(new ApiError(0, "network", "The upload was interrupted.")); };
    xhr.send(file);
  });
}
