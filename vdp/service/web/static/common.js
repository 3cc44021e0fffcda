// Shared helpers of the page: API calls with the session cookie, formatting, progress bars.
export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

/** An error answered by the gateway: `status`, `code` and its words in `message`. */
export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

/** Call the API with the session cookie; state-changing calls carry the CSRF header. */
export async function api(path, {method = "GET", json, body, headers = {}} = {}) {
  const init = {method, credentials: "same-origin", headers: {...headers}};
  if (method !== "GET" && method !== "HEAD") init.headers["X-VDP-CSRF"] = "1";
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body;
  }
  let r;
  try {
    r = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "network", "The gateway did not answer. Is it still running?");
  }
  if (r.status === 401) {
    location.reload();  // the session ended: the page comes back as the sign-in form
    throw new ApiError(401, "signed_out", "Signed out.");
  }
  if (!r.ok) {
    const err = await r.json().catch(() => ({}));
    throw new ApiError(r.status, err.code || "http_error", plainError(r.status, err));
  }
  return r.status === 204 ? null : r.json();
}

/** A gateway error in words a person can act on. */
export function plainError(status, err) {
  const detail = err.detail || `HTTP ${status}`;
  const lead = {
    path_forbidden: "That path is outside the folders this gateway may read.",
    not_a_video: "The file is not a video the gateway can decode.",
    upload_too_large: "The file is larger than this gateway accepts.",
    invalid_spec: "Some options are not valid.",
    conflict: "That is not possible in the job's current state.",
    not_found: "It does not exist (any more).",
    csrf: "The request was refused as cross-site.",
  }[err.code];
  return lead ? `${lead}\n${detail}` : detail;
}

/** Create an element: el("a", {href: "/", text: "x"}, child...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

export function fmtSeconds(s) {
  if (s === null || s === undefined || !isFinite(s)) return "--";
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
}

export function fmtBytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function stateBadge(state, cancelRequested = false) {
  const label = cancelRequested && !TERMINAL.has(state) ? `${state} (cancelling)` : state;
  return el("span", {class: `state ${state}`, text: label, "data-state": state});
}

/** Per-stage bars with frames, fps and ETA; the job's ETA is the largest stage ETA. */
export function renderProgress(container, status) {
  container.replaceChildren();
  const stages = status.progress || [];
  if (!stages.length) {
    container.append(el("p", {class: "hint", text: status.state === "queued" ? "Waiting to start." : "No progress reported."}));
    return;
  }
  const etas = stages.map((p) => p.eta_seconds).filter((e) => e !== null && e !== undefined);
  if (!TERMINAL.has(status.state) && etas.length) {
    container.append(el("p", {class: "eta", text: `About ${fmtSeconds(Math.max(...etas))} left`}));
  }
  const grid = el("div", {class: "stages"});
  for (const p of stages) {
    const total = p.frames_total || 0;
    const id = `p-${status.id}-${p.stage}`;
    const bar = el("progress", {id, max: String(total || 1), value: String(total ? Math.min(p.frames_done, total) : 0),
                                "data-stage": p.stage, "data-done": String(p.frames_done)});
    bar.setAttribute("aria-label", `${p.stage} progress`);
    const meta = `${p.frames_done}/${total || "?"} frames` + (p.fps ? ` · ${p.fps.toFixed(2)} fps` : "") +
      (!TERMINAL.has(status.state) && p.eta_seconds !== null && p.eta_seconds !== undefined ? ` · ETA ${fmtSeconds(p.eta_seconds)}` : "");
    grid.append(el("label", {for: id, text: p.stage}), bar, el("span", {class: "meta", text: meta}));
  }
  container.append(grid);
}

/** Follow a job over server-sent events; `onStatus(status)` per change. Returns a closer. */
export function follow(jobId, onStatus, onGone) {
  const source = new EventSource(`/v1/jobs/${jobId}/events`);
  source.addEventListener("status", (e) => {
    const status = JSON.parse(e.data);
    onStatus(status);
    if (TERMINAL.has(status.state)) source.close();
  });
  source.addEventListener("deleted", () => { source.close(); if (onGone) onGone(); });
  source.onerror = () => {
    // EventSource reconnects by itself; a finished stream is closed above.
  };
  return () => source.close();
}

export function showFlash(text) {
  const flash = document.getElementById("flash");
  flash.textContent = text;
  flash.hidden = !text;
}
