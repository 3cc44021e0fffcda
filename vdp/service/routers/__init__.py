"""One router per resource: jobs, outputs, uploads, presets, health."""
