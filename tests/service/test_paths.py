"""Input roots, upload ids, output names and sanitised file names."""
from __future__ import annotations

import pytest

from vdp.service.errors import ServiceError, http_status
from vdp.service.paths import output_path, resolve_input, resolve_upload, sanitize_filename


@pytest.fixture()
def tree(tmp_path):
    root, other, outside = tmp_path / "root", tmp_path / "other", tmp_path / "outside"
    for d in (root / "sub", other, outside):
        d.mkdir(parents=True)
    (root / "a.mp4").write_bytes(b"a")
    (root / "sub" / "b.mp4").write_bytes(b"b")
    (other / "c.mp4").write_bytes(b"c")
    (outside / "secret.mp4").write_bytes(b"s")
    (root / "escape.mp4").symlink_to(outside / "secret.mp4")
    (root / "dangling.mp4").symlink_to(outside / "gone.mp4")
    (root / "esc_dir").symlink_to(outside)
    (root / "inner.mp4").symlink_to(root / "sub" / "b.mp4")
    return {"root": root, "other": other, "outside": outside}


def status_of(fn, *args) -> tuple[int, str]:
    with pytest.raises(ServiceError) as info:
        fn(*args)
    return http_status(info.value), info.value.code


def test_relative_and_absolute_paths_inside_roots(tree):
    roots = [tree["root"], tree["other"]]
    assert resolve_input("a.mp4", roots) == tree["root"] / "a.mp4"
    assert resolve_input("sub/b.mp4", roots) == tree["root"] / "sub" / "b.mp4"
    assert resolve_input("c.mp4", roots) == tree["other"] / "c.mp4"  # second root
    assert resolve_input(str(tree["other"] / "c.mp4"), roots) == tree["other"] / "c.mp4"
    assert resolve_input("./sub//b.mp4", roots) == tree["root"] / "sub" / "b.mp4"
    # A link that stays inside the root is fine.
    assert resolve_input("inner.mp4", roots) == tree["root"] / "sub" / "b.mp4"


@pytest.mark.parametrize("raw", ["../outside/secret.mp4", "sub/../../outside/secret.mp4", "..",
                                 "sub\\..\\..\\x.mp4"])
def test_dotdot_is_rejected(tree, raw):
    assert status_of(resolve_input, raw, [tree["root"]]) == (400, "bad_path")


def test_nul_byte_is_rejected(tree):
    assert status_of(resolve_input, "a.mp4\x00.txt", [tree["root"]]) == (400, "bad_path")


def test_absolute_path_outside_roots(tree):
    assert status_of(resolve_input, str(tree["outside"] / "secret.mp4"), [tree["root"]]) == (403, "path_forbidden")
    assert status_of(resolve_input, "/etc/passwd", [tree["root"]]) == (403, "path_forbidden")
    # A sibling whose name merely starts with the root's name is outside too.
    sibling = tree["root"].parent / (tree["root"].name + "2")
    sibling.mkdir()
    (sibling / "x.mp4").write_bytes(b"x")
    assert status_of(resolve_input, str(sibling / "x.mp4"), [tree["root"]]) == (403, "path_forbidden")


@pytest.mark.parametrize("raw", ["escape.mp4", "dangling.mp4", "esc_dir/secret.mp4"])
def test_symlink_escape(tree, raw):
    assert status_of(resolve_input, raw, [tree["root"]]) == (403, "path_forbidden")


def test_missing_directory_and_unreadable_names(tree):
    roots = [tree["root"]]
    assert status_of(resolve_input, "nope.mp4", roots) == (422, "input_not_found")
    assert status_of(resolve_input, "sub", roots) == (422, "input_not_file")
    assert status_of(resolve_input, "x" * 5000, roots)[0] == 422
    assert status_of(resolve_input, "a.mp4", []) == (403, "path_forbidden")


def test_upload_ids(tmp_path):
    uploads = tmp_path / "uploads"
    (uploads / ("a" * 32)).mkdir(parents=True)
    (uploads / ("a" * 32) / "clip.webm").write_bytes(b"v")
    (uploads / ("a" * 32) / ".clip.webm.part").write_bytes(b"v")
    assert resolve_upload("a" * 32, uploads).name == "clip.webm"
    assert status_of(resolve_upload, "b" * 32, uploads) == (422, "unknown_upload")
    assert status_of(resolve_upload, "../" + "a" * 29, uploads) == (422, "unknown_upload")


def test_output_names(tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    (job / "depth.npz").write_bytes(b"d")
    (job / "link").symlink_to(tmp_path)
    assert output_path(job, "depth.npz") == job / "depth.npz"
    assert status_of(output_path, job, "a/b") == (400, "bad_name")
    assert status_of(output_path, job, "..\\x") == (400, "bad_name")
    assert status_of(output_path, job, "..") == (400, "bad_name")
    assert status_of(output_path, job, ".archives") == (400, "bad_name")
    assert status_of(output_path, job, "missing.mp4") == (404, "not_found")
    assert status_of(output_path, job, "link") == (403, "path_forbidden")


@pytest.mark.parametrize("given,expected", [
    ("clip.mp4", "clip.mp4"),
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\me\\my clip (1).mov", "my_clip_1_.mov"),
    (".hidden.mp4", "hidden.mp4"),
    ("...", "upload.bin"),
    ("", "upload.bin"),
    (None, "upload.bin"),
    ("é🎥.webm", "_.webm"),
])
def test_sanitize_filename(given, expected):
    assert sanitize_filename(given) == expected


def test_sanitize_keeps_the_suffix_of_long_names():
    name = sanitize_filename("x" * 300 + ".webm")
    assert len(name) == 100 and name.endswith(".webm")
