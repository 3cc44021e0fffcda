"""Reading a video's metadata: `probe` (one container scan through `vdp.io.decode.VideoSource`,
no frame decoded), with the video stream and audio track chosen by `vdp.io.streams`."""
from __future__ import annotations

import os
from dataclasses import replace

from vdp.io.decode import VideoSource
from vdp.io.source_facts import DEFAULT_TIMEOUT_S
from vdp.io.streams import AudioChoice, select_streams
from vdp.types import VideoInfo


def probe(path: str | os.PathLike[str], *, timeout_s: float = DEFAULT_TIMEOUT_S,
          hdr: str = "tonemap", video_stream: int | None = None,
          audio_stream: AudioChoice = None) -> VideoInfo:
    """Read a video's metadata (one container scan, no frame decoding).

    Args:
        path: Video file.
        timeout_s: Deadline for opening the file.
        hdr: ``"tonemap"`` or ``"keep"``: what decoding will do to an HDR source (only
            ``info.tone_mapping`` and the warnings differ; nothing is converted here).
        video_stream: Which video stream, by position among the file's video streams
            (None: ffmpeg's pick; see `vdp.io.streams`).
        audio_stream: Which audio track to mux into video outputs, by position among the
            file's audio tracks (None: ffmpeg's pick; ``"none"``: no audio).

    Returns:
        `VideoInfo` in display orientation (width/height after rotation), with the exact frame
        count from the scan and the streams used (`has_audio`: an audio track is used).

    Raises:
        DecodeError: The file is missing, empty, not a video, has no video stream or is
            truncated.
        StreamSelectionError: `video_stream` or `audio_stream` is not in the file (the
            message lists the streams it has).
        JobTimeoutError: Probing took longer than `timeout_s`.
    """
    choice = select_streams(os.fspath(path), video_stream, audio_stream, timeout_s=timeout_s)
    index = None if choice is None else choice.video.index
    with VideoSource(path, timeout_s=timeout_s, hdr=hdr, stream_index=index) as source:
        keys = source.keyframes()
        info = source.info
    if keys is not None and len(keys) * 4 < info.num_frames:  # sparse enough to plan around
        info = replace(info, keyframes=tuple(keys))
    if choice is None:
        return info
    audio = choice.audio
    return replace(info, has_audio=audio is not None, audio_stream=None if audio is None else audio.index,
                   streams_used=choice.to_dict())
