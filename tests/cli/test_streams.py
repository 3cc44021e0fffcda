"""`vdp run --video-stream N --audio-stream N|none`: the spec's streams section, checked against
the file before anything runs."""
from __future__ import annotations

from pathlib import Path

import pytest

from vdp.cli.main import _build_spec, build_parser, main
from tests.io.test_streams import make_two_stream_file


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_two_stream_file(tmp_path_factory.mktemp("streams") / "two.mp4")


@pytest.mark.parametrize("flags, streams", [
    ([], None),
    (["--video-stream", "1"], {"video": 1, "audio": None}),
    (["--audio-stream", "none"], {"video": None, "audio": "none"}),
    (["--video-stream", "0", "--audio-stream", "1"], {"video": 0, "audio": 1}),
])
def test_flags_set_the_streams_section(flags: list[str], streams: dict | None) -> None:
    args = build_parser().parse_args(["run", "in.mp4", "--preset", "depth", *flags])
    spec = _build_spec(args, "in.mp4")
    assert (spec.streams and spec.streams.model_dump()) == streams


def test_bad_audio_flag_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["run", "in.mp4", "--preset", "depth", "--audio-stream", "french"])
    assert exit_.value.code == 2 and "not an audio track: 'french'" in capsys.readouterr().err


def test_negative_stream_is_a_spec_error(capsys) -> None:
    assert main(["run", "in.mp4", "--preset", "depth", "--video-stream", "-1"]) == 2
    assert "streams.video" in capsys.readouterr().err


def test_missing_stream_exits_2_listing_the_streams(two: Path, tmp_path: Path, capsys) -> None:
    code = main(["run", str(two), "--preset", "depth", "--synthetic-weights", "--local",
                 "--video-stream", "2", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "streams.video: no video stream 2" in err
    assert "1: stream #1 h264 160x120" in err and "1: stream #3 aac (fra)" in err
