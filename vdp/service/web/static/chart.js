// A small inline-SVG bar chart of per-stage time (busy inside the stage vs. its wall time).
const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** `stages`: report.json's per-stage entries; `wall` the job's wall seconds. */
export function timingChart(stages, wall) {
  const rowH = 26, left = 70, right = 80, width = 480;
  const max = Math.max(wall || 0, ...stages.map((s) => Math.max(s.busy_seconds || 0, s.elapsed_seconds || 0)), 1e-6);
  const scale = (width - left - right) / max;
  const height = stages.length * rowH + 34;
  const chart = svg("svg", {class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img",
                            "aria-label": "Seconds per stage: busy time in the stage's own calls"});
  chart.append(svg("title", {}, "Per-stage timings"));
  stages.forEach((s, i) => {
    const y = i * rowH + 4;
    const busy = s.busy_seconds || 0;
    chart.append(svg("text", {x: 0, y: y + 15}, s.stage));
    chart.append(svg("rect", {class: "bar-wall", x: left, y: y + 2, width: Math.max(1, (s.elapsed_seconds || 0) * scale), height: 16, rx: 2}));
    chart.append(svg("rect", {class: "bar-busy", x: left, y: y + 5, width: Math.max(1, busy * scale), height: 10, rx: 2,
                              "data-stage": s.stage, "data-seconds": busy}));
    chart.append(svg("text", {x: width - right + 6, y: y + 15}, `${busy.toFixed(2)} s`));
  });
  const ly = stages.length * rowH + 20;
  chart.append(svg("rect", {class: "bar-busy", x: left, y: ly - 9, width: 12, height: 10}));
  chart.append(svg("text", {x: left + 16, y: ly}, "busy in the stage"));
  chart.append(svg("rect", {class: "bar-wall", x: left + 150, y: ly - 9, width: 12, height: 10}));
  chart.append(svg("text", {x: left + 166, y: ly}, "elapsed while the job ran"));
  return chart;
}
