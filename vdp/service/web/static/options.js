// The submit form's common options: ranges, choices, defaults and help come from the
// JobSpec JSON schema; values start at the chosen preset's.
import {el} from "/web/static/common.js";

// [where in the spec, schema definition, field, label]; `where` is "job", "resources",
// "outputs" (every output) or a stage name (shown only when the preset runs that stage).
const COMMON = [
  ["job", "JobSpec", "max_frames", "Max frames"],
  ["depth", "DepthSpec", "model", "Depth model"],
  ["depth", "DepthSpec", "input_size", "Depth input size"],
  ["matte", "MatteSpec", "variant", "Matting model"],
  ["matte", "MatteSpec", "downsample_ratio", "Matting downsample ratio"],
  ["stereo", "StereoSpec", "divergence", "Stereo divergence (%)"],
  ["stereo", "StereoSpec", "convergence", "Stereo convergence"],
  ["outputs", "OutputSpec", "crf", "Video quality (CRF)"],
  ["job", "JobSpec", "precision", "Precision"],
  ["resources", "ResourcesSpec", "device", "Device"],
  ["resources", "ResourcesSpec", "batch_frames", "Frames per batch"],
  ["job", "JobSpec", "scene_cuts", "Restart at scene cuts"],
];
const SYNTHETIC = ["DepthSpec", "synthetic_weights", "Synthetic weights (tests and demos only: not real results)"];

function property(schema, def, field) {
  const node = def === "JobSpec" ? schema : schema.$defs[def];
  const prop = node.properties[field];
  const variants = prop.anyOf ? prop.anyOf.filter((v) => v.type !== "null") : [prop];
  return {...variants[0], description: prop.description, default: prop.default, nullable: !!prop.anyOf};
}

function presetValue(spec, where, field) {
  if (where === "job") return spec[field];
  if (where === "resources") return (spec.resources || {})[field];
  if (where === "outputs") return (spec.outputs || [])[0]?.[field];
  return ((spec.stages || {})[where] || {})[field];
}

function rangeText(p) {
  const lo = p.minimum !== undefined ? `${p.minimum} ≤ ` : p.exclusiveMinimum !== undefined ? `${p.exclusiveMinimum} < ` : "";
  const hi = p.maximum !== undefined ? ` ≤ ${p.maximum}` : p.exclusiveMaximum !== undefined ? ` < ${p.exclusiveMaximum}` : "";
  return lo || hi ? `${lo}value${hi}` : "";
}

/** Fill `container` with the options that apply to `spec` (a preset's mapping). */
export function buildOptions(container, schema, spec) {
  container.replaceChildren();
  const stages = Object.keys(spec.stages || {});
  const fields = el("fieldset", {}, el("legend", {text: "Options"}),
    el("p", {class: "hint", text: "Empty fields keep the preset's value."}));
  for (const [where, def, field, label] of COMMON) {
    if (!["job", "resources", "outputs"].includes(where) && !stages.includes(where)) continue;
    if (where === "outputs" && !(spec.outputs || []).length) continue;
    fields.append(...control(schema, where, def, field, label, presetValue(spec, where, field)).filter(Boolean));
  }
  if (stages.includes("depth") || stages.includes("matte")) {
    const [def, field, label] = SYNTHETIC;
    fields.append(...control(schema, "synthetic", def, field, label, false).filter(Boolean));
  }
  container.append(fields);
}

function control(schema, where, def, field, label, current) {
  const p = property(schema, def, field);
  const id = `opt-${where}-${field}`;
  const value = current ?? p.default;
  const data = {"data-where": where, "data-field": field, id, name: id};
  const help = [p.description, rangeText(p)].filter(Boolean).join(" ");
  const hintId = `${id}-hint`;
  if (p.type === "boolean") {
    const box = el("input", {type: "checkbox", ...data, "aria-describedby": help ? hintId : null});
    box.checked = !!value;
    box.dataset.kind = "boolean";
    return [el("div", {class: "check"}, box, el("label", {for: id, class: "inline", text: label})),
            help ? el("p", {class: "hint", id: hintId, text: help}) : null];
  }
  let input;
  if (p.enum) {
    input = el("select", {...data, "data-kind": "enum"}, ...p.enum.map((v) => el("option", {value: v, text: v})));
    input.value = value ?? p.enum[0];
  } else {
    const integer = p.type === "integer";
    input = el("input", {type: "number", ...data, "data-kind": integer ? "integer" : "number",
      step: integer ? "1" : "any", inputmode: integer ? "numeric" : "decimal",
      min: p.minimum ?? p.exclusiveMinimum, max: p.maximum ?? p.exclusiveMaximum,
      placeholder: value === null || value === undefined ? (field === "max_frames" ? "all" : p.nullable ? "automatic" : "") : String(value)});
    input.dataset.range = JSON.stringify({min: p.minimum, max: p.maximum, xmin: p.exclusiveMinimum, xmax: p.exclusiveMaximum});
    if (field === "max_frames" && value !== null && value !== undefined) input.value = String(value);
  }
  if (help) input.setAttribute("aria-describedby", hintId);
  return [el("label", {for: id, text: label}), input, help ? el("p", {class: "hint", id: hintId, text: help}) : null];
}

/** A full spec: the preset's mapping with the options set on top (throws with `.field`). */
export function readOptions(container, presetSpec) {
  const spec = structuredClone(presetSpec);
  for (const input of container.querySelectorAll("[data-field]")) {
    const {where, field, kind} = input.dataset;
    let value;
    if (kind === "boolean") value = input.checked;
    else if (kind === "enum") value = input.value;
    else {
      if (input.value.trim() === "") continue;
      value = Number(input.value);
      const label = container.querySelector(`label[for="${input.id}"]`).textContent;
      const r = JSON.parse(input.dataset.range);
      const bad = !isFinite(value) || (kind === "integer" && !Number.isInteger(value)) ||
        (r.min !== undefined && value < r.min) || (r.max !== undefined && value > r.max) ||
        (r.xmin !== undefined && value <= r.xmin) || (r.xmax !== undefined && value >= r.xmax);
      if (bad) {
        const err = new Error(`${label}: ${input.value} is out of range (${rangeText({minimum: r.min, maximum: r.max,
          exclusiveMinimum: r.xmin, exclusiveMaximum: r.xmax}) || "a number"}${kind === "integer" ? ", whole number" : ""}).`);
        err.field = input;
        throw err;
      }
    }
    apply(spec, where, field, value);
  }
  return spec;
}

function apply(spec, where, field, value) {
  if (where === "job") spec[field] = value;
  else if (where === "resources") spec.resources = {...(spec.resources || {}), [field]: value};
  else if (where === "outputs") spec.outputs = (spec.outputs || []).map((o) => ({...o, [field]: value}));
  else if (where === "synthetic") {
    for (const stage of ["depth", "matte"]) if (spec.stages?.[stage]) spec.stages[stage][field] = value;
  } else if (spec.stages?.[where]) spec.stages[where][field] = value;
}
