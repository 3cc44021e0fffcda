"""Which video stream and which audio track of an input a job uses.

A file may hold several video streams (angles, a preview) and several audio tracks
(languages, commentary; an MPEG-TS with two programmes has one per programme). By default a
job uses what ffmpeg picks for a plain ``ffmpeg -i FILE OUT`` (its best video stream and its
best audio track); a spec can choose instead by position among the file's streams of that
kind (``streams.video: 1`` is ffmpeg's ``0:v:1``, ``streams.audio: 0`` is ``0:a:0``, or
``"none"`` for no audio). Exactly one audio track is muxed into video outputs.

The listing comes from one short ffmpeg run (``-t 0`` to the null muxer: no decoding), so it
costs no torch import. Nothing here imports torch.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass
from typing import Any, Literal

from vdp.errors import SpecError
from vdp.io._ffmpeg import ffmpeg_exe

DEFAULT_TIMEOUT_S = 120.0
AudioChoice = int | Literal["none"] | None

_STREAM = re.compile(r"^\s*Stream #0:(\d+)(?:\[0x[0-9a-fA-F]+\])?(?:\(([^)]*)\))?: "
                     r"(Video|Audio|Subtitle|Data|Attachment): (\w+)([^\n]*)$", re.M)
_MAPPED = re.compile(r"^\s*Stream #0:(\d+) -> #0:\d+", re.M)


class StreamSelectionError(SpecError):
    """The spec chose a video stream or audio track the input does not have."""


@dataclass(frozen=True)
class StreamEntry:
    """One stream of a file.

    Attributes:
        index: Absolute stream index in the file (TorchCodec's ``stream_index``, ffmpeg's
            ``0:N``).
        kind: ``video``, ``audio``, ``subtitle``, ``data`` or ``attachment``.
        position: Position among the file's streams of `kind` (ffmpeg's ``0:v:N``/``0:a:N``).
        codec: Codec name, e.g. ``h264``, ``aac``.
        language: Language tag when the file has one (``und`` counts as none).
        details: The rest of ffmpeg's line (size, rate, channels), for messages.
    """

    index: int
    kind: str
    position: int
    codec: str
    language: str | None = None
    details: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The fields a report shows (without `details`)."""
        d = asdict(self)
        d.pop("details")
        return d

    def describe(self) -> str:
        lang = f" ({self.language})" if self.language else ""
        return f"{self.position}: stream #{self.index} {self.codec}{lang}{self.details}"


@dataclass(frozen=True)
class StreamChoice:
    """The video stream and the audio track (None: no audio) a job uses."""

    video: StreamEntry
    audio: StreamEntry | None

    def to_dict(self) -> dict[str, Any]:
        return {"video": self.video.to_dict(), "audio": None if self.audio is None else self.audio.to_dict()}


@dataclass(frozen=True)
class StreamListing:
    """Every stream of a file and ffmpeg's default picks (absolute indices, None when none)."""

    streams: tuple[StreamEntry, ...]
    default_video: int | None
    default_audio: int | None

    def of_kind(self, kind: str) -> list[StreamEntry]:
        return [s for s in self.streams if s.kind == kind]

    def by_index(self, index: int | None) -> StreamEntry | None:
        return next((s for s in self.streams if s.index == index), None)


def _details(rest: str, kind: str) -> str:
    if kind == "video" and (m := re.search(r"\b(\d{1,5}x\d{1,5})\b", rest)):
        return f" {m.group(1)}"
    if kind == "audio" and (m := re.search(r"(\d+ Hz), ([\w.()]+)", rest)):
        return f" {m.group(1)} {m.group(2)}"
    return ""


def parse_listing(stderr: str) -> StreamListing:
    """The streams and ffmpeg's default mapping from the log of ``ffmpeg -i FILE -t 0 -f null -``."""
    head, _, mapping = stderr.partition("Stream mapping:")
    counts: dict[str, int] = {}
    streams = []
    for m in _STREAM.finditer(head):
        kind = m.group(3).lower()
        position = counts.get(kind, 0)
        counts[kind] = position + 1
        lang = m.group(2) if m.group(2) and m.group(2) != "und" else None
        streams.append(StreamEntry(int(m.group(1)), kind, position, m.group(4), lang,
                                   _details(m.group(5), kind)))
    kinds = {s.index: s.kind for s in streams}
    mapped = [int(i) for i in _MAPPED.findall(mapping.split("Output #0")[0])]
    return StreamListing(tuple(streams),
                         next((i for i in mapped if kinds.get(i) == "video"), None),
                         next((i for i in mapped if kinds.get(i) == "audio"), None))


def list_streams(path: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> StreamListing | None:
    """The streams of `path` and ffmpeg's default picks; None when ffmpeg cannot read it (the
    decoder then explains why)."""
    try:
        proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", path, "-t", "0",
                               "-f", "null", "-"], capture_output=True, text=True,
                              errors="replace", timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return None
    listing = parse_listing(proc.stderr)
    return listing if listing.streams else None


def _available(path: str, listing: StreamListing) -> str:
    video = "; ".join(s.describe() for s in listing.of_kind("video")) or "none"
    audio = "; ".join(s.describe() for s in listing.of_kind("audio")) or "none"
    return f"{path} has video streams [{video}] and audio tracks [{audio}]"


def choose_streams(path: str, listing: StreamListing, video: int | None = None,
                   audio: AudioChoice = None) -> StreamChoice | None:
    """The streams a job uses: `video`/`audio` by position among the file's streams of that
    kind, None for ffmpeg's default pick, ``"none"`` for no audio.

    Returns:
        The choice; None when the file has no video stream (the decoder explains).

    Raises:
        StreamSelectionError: A chosen position does not exist (the message lists the streams
            the file has).
    """
    videos, audios = listing.of_kind("video"), listing.of_kind("audio")
    if not videos:
        return None
    if video is None:
        chosen = listing.by_index(listing.default_video) or videos[0]
    elif 0 <= video < len(videos):
        chosen = videos[video]
    else:
        raise StreamSelectionError(f"streams.video: no video stream {video}; "
                                   f"{_available(path, listing)}")
    if audio == "none":
        track = None
    elif audio is None:
        track = listing.by_index(listing.default_audio) or (audios[0] if audios else None)
    elif isinstance(audio, int) and 0 <= audio < len(audios):
        track = audios[audio]
    else:
        raise StreamSelectionError(f"streams.audio: no audio track {audio!r}; "
                                   f"{_available(path, listing)}")
    return StreamChoice(chosen, track)


def select_streams(path: str, video: int | None = None, audio: AudioChoice = None, *,
                   timeout_s: float = DEFAULT_TIMEOUT_S) -> StreamChoice | None:
    """`choose_streams` on the listing of `path` (None when ffmpeg cannot list its streams or
    it has no video stream).

    Raises:
        StreamSelectionError: A chosen position does not exist.
    """
    listing = list_streams(path, timeout_s=timeout_s)
    return None if listing is None else choose_streams(path, listing, video, audio)


def audio_map(source: str, audio_stream: int | None, timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
    """The ffmpeg ``-map`` of exactly one audio track of `source` as the second input: track
    `audio_stream` (absolute index), else ffmpeg's pick, else its first (``?``: none is fine)."""
    if audio_stream is None:
        listing = list_streams(source, timeout_s=timeout_s)
        audio_stream = None if listing is None else listing.default_audio
    return "1:a:0?" if audio_stream is None else f"1:{audio_stream}"
