// One job: live progress, outputs shown in place, downloads, timings chart, errors in words.
import {api, el, fmtBytes, fmtSeconds, follow, renderProgress, showFlash, stateBadge, TERMINAL} from "/web/static/common.js";
import {timingChart} from "/web/static/chart.js";

let jobId = null;
let shownFinal = false;

export async function showJob(id) {
  jobId = id;
  document.getElementById("job-view").hidden = false;
  document.getElementById("job-id").textContent = id;
  document.title = `vdp - job ${id.slice(0, 8)}`;
  document.getElementById("job-cancel").addEventListener("click", cancel);
  document.getElementById("job-delete").addEventListener("click", remove);
  const status = await api(`/v1/jobs/${id}`);
  render(status);
  if (!TERMINAL.has(status.state)) follow(id, render, () => location.assign("/"));
}

function render(status) {
  document.getElementById("job-state").replaceChildren(stateBadge(status.state, status.cancel_requested));
  document.getElementById("job-input").textContent = `input: ${status.input}`;
  renderProgress(document.getElementById("job-progress"), status);
  const done = TERMINAL.has(status.state);
  document.getElementById("job-cancel").disabled = done || status.cancel_requested;
  document.getElementById("job-delete").disabled = !done;
  const box = document.getElementById("job-error");
  box.hidden = status.state !== "failed" && status.state !== "cancelled";
  box.replaceChildren();
  if (status.state === "failed") {
    box.append(el("p", {}, el("strong", {text: "This job failed."})), el("p", {text: status.error || "No reason was recorded."}));
  } else if (status.state === "cancelled") {
    box.append(el("p", {}, el("strong", {text: "This job was cancelled."})), status.error ? el("p", {text: status.error}) : null);
  }
  if (done && !shownFinal) {
    shownFinal = true;
    showOutputs(status).catch((e) => showFlash(e.message));
  }
}

async function cancel() {
  try { render(await api(`/v1/jobs/${jobId}/cancel`, {method: "POST"})); } catch (e) { showFlash(e.message); }
}

async function remove() {
  if (!confirm("Delete this job and its outputs?")) return;
  try { await api(`/v1/jobs/${jobId}`, {method: "DELETE"}); location.assign("/"); } catch (e) { showFlash(e.message); }
}

const url = (name) => `/v1/jobs/${jobId}/outputs/${encodeURIComponent(name)}`;

async function showOutputs(status) {
  const {outputs} = await api(`/v1/jobs/${jobId}/outputs`);
  if (!outputs.length) return;
  const grid = document.getElementById("job-outputs");
  grid.replaceChildren();
  const kinds = Object.fromEntries((status.spec.outputs || []).map((o) => [o.name || defaultName(o.kind), o.kind]));
  const files = el("ul", {class: "files"});
  for (const out of outputs) {
    const shown = await outputCard(out, kinds[out.name]);
    if (shown) grid.append(shown);
    else files.append(el("li", {}, download(out)));
  }
  if (files.children.length) grid.append(el("article", {class: "output"}, el("h3", {text: "Other files"}), files));
  document.getElementById("outputs-section").hidden = false;
  if (outputs.some((o) => o.name === "report.json")) {
    const report = await api(url("report.json"));
    showReport(report);
  }
}

function defaultName(kind) {
  return {depth_npz: "depth.npz", depth_npy: "depth_npy", depth_png16: "depth_png16", depth_color_mp4: "depth_color.mp4",
    depth_preview_mp4: "depth_preview.mp4", alpha_mp4: "alpha.mp4", foreground_webm: "foreground.webm", rgba_png: "rgba_png",
    composite_mp4: "composite.mp4"}[kind] || kind;
}

/** A card that shows `out` in place, or null for files a browser cannot show. */
async function outputCard(out, kind) {
  const title = out.name + (kind === "depth_preview_mp4" ? " (RGB | depth)" : "");
  const card = el("article", {class: "output", "data-name": out.name}, el("h3", {text: title}));
  const lower = out.name.toLowerCase();
  const transparent = kind === "foreground_webm" || kind === "rgba_png";
  if (out.type === "file" && (lower.endsWith(".mp4") || lower.endsWith(".webm"))) {
    const video = el("video", {src: url(out.name), controls: true, muted: true, playsinline: true, preload: "auto", loop: true,
                               "aria-label": `${out.name} video`});
    video.muted = true;
    card.append(transparent ? el("div", {class: "checker"}, video) : video);
  } else if (out.type === "directory") {
    const frames = await api(`/web/api/jobs/${jobId}/frames/${encodeURIComponent(out.name)}`).catch(() => ({frames: []}));
    if (!frames.frames.length) return null;
    card.append(frameViewer(out.name, frames.frames, transparent));
  } else {
    return null;
  }
  card.append(el("p", {}, download(out)));
  return card;
}

function download(out) {
  const size = `${fmtBytes(out.size_bytes)}${out.type === "directory" ? ", as ZIP" : ""}`;
  return el("a", {href: url(out.name), download: out.type === "directory" ? `${out.name}.zip` : out.name,
                  text: `Download ${out.name} (${size})`});
}

function frameViewer(folder, names, transparent) {
  const src = (i) => `/web/api/jobs/${jobId}/frames/${encodeURIComponent(folder)}/${encodeURIComponent(names[i])}`;
  const img = el("img", {src: src(0), alt: `${folder} frame 1 of ${names.length}`});
  const id = `frames-${folder}`;
  const caption = el("span", {class: "hint", text: `frame 1 / ${names.length}`});
  const slider = el("input", {type: "range", id, min: "0", max: String(names.length - 1), value: "0", step: "1"});
  slider.addEventListener("input", () => {
    const i = Number(slider.value);
    img.src = src(i);
    img.alt = `${folder} frame ${i + 1} of ${names.length}`;
    caption.textContent = `frame ${i + 1} / ${names.length}`;
  });
  return el("div", {class: "frames"}, transparent ? el("div", {class: "checker"}, img) : img,
            el("label", {for: id, text: `Frame (${folder})`}), slider, caption);
}

function showReport(report) {
  const section = document.getElementById("timings-section");
  const box = document.getElementById("job-timings");
  box.replaceChildren();
  const stages = Object.values(report.stages || {});
  if (stages.length) box.append(timingChart(stages, report.wall_seconds));
  box.append(el("table", {class: "kv"}, el("tbody", {},
    row("Frames", report.frames), row("Wall time", `${fmtSeconds(report.wall_seconds)} (${(report.wall_seconds || 0).toFixed(1)} s)`),
    row("Device", report.device), row("Runner", report.runner))));
  const notes = [...(report.warnings || []), ...(report.fallbacks || []).map((f) => f.reason || f.message || JSON.stringify(f))];
  if (notes.length) box.append(el("h3", {text: "Warnings"}), el("ul", {}, ...notes.map((n) => el("li", {text: n}))));
  section.hidden = false;
}

function row(k, v) {
  return el("tr", {}, el("th", {scope: "row", text: k}), el("td", {text: v === undefined || v === null || v === "" ? "-" : String(v)}));
}
