"""A job spec whose input is its clip's intermediate (see `vdp.io.prepare`)."""
from __future__ import annotations

import json
from pathlib import Path

from vdp.io.prepare import prepare_input


def clipped_spec(spec, work: Path):
    """`spec` with `input` replaced by the prepared intermediate in ``work/input/`` (made once;
    a resumed job reuses it), `clip` cleared and output names still from the original input."""
    from vdp.io import probe
    from vdp.naming import input_stem
    from vdp.spec import JobSpec

    clip, streams = spec.clip, spec.streams
    dest = work / "input" / f"{input_stem(spec.input)}.mp4"
    marker = dest.with_suffix(".json")
    wanted = json.dumps([clip.model_dump(), streams and streams.model_dump()], sort_keys=True) + spec.input
    if not (dest.is_file() and marker.is_file() and marker.read_text() == wanted):
        info = probe(spec.input, video_stream=streams and streams.video,
                     audio_stream=streams and streams.audio)
        prepare_input(spec.input, dest, start_s=clip.start_s, end_s=clip.end_s, target_fps=clip.target_fps,
                      max_res=clip.max_res, has_audio=info.has_audio,
                      timeout_s=max(600.0, spec.resources.batch_timeout_s),
                      video_stream=info.video_stream, audio_stream=info.audio_stream)
        # the job's report names the original's streams, not the intermediate's
        (work / "input" / "streams.json").write_text(json.dumps(info.streams_used))
        marker.write_text(wanted)
    data = json.loads(spec.to_json())
    # the intermediate carries the input's stem and only the chosen streams
    data.update(input=str(dest), clip=None, streams=None)
    return JobSpec.parse(data)
