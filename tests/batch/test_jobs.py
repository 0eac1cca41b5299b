"""Inputs to jobs, the manifest and the resume check: no model, no video decoding."""

from __future__ import annotations

from pathlib import Path

import pytest

from livesegment.batch.driver import is_complete
from livesegment.batch.jobs import expand_inputs, partial_path, plan_jobs
from livesegment.batch.manifest import ManifestWriter, OutputFile, Record, read_manifest
from livesegment.batch.worker import BatchSettings
from livesegment.errors import UsageError
from livesegment.model.cards import ModelSpec, sha256_of


def _touch(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_files_folders_and_globs_expand_to_a_sorted_unique_list(tmp_path):
    b = _touch(tmp_path / "clips" / "b.mp4")
    a = _touch(tmp_path / "clips" / "a.avi")
    _touch(tmp_path / "clips" / "notes.txt")  # a folder contributes videos only
    _touch(tmp_path / "clips" / "a.partial.mp4")  # nor a partial output
    _touch(tmp_path / "clips" / "sub" / "c.mp4")  # nor its subfolders
    d = _touch(tmp_path / "more" / "d.mkv")
    text = _touch(tmp_path / "readme.txt")  # a file named alone is taken (and fails alone)
    found = expand_inputs(
        [str(tmp_path / "clips"), str(tmp_path / "more" / "*.mkv"), str(text), str(b)]
    )
    assert found == sorted([a, b, d, text])


@pytest.mark.parametrize(
    ("name", "needle"),
    [("missing.mp4", "no such file"), ("nothing*.mp4", "no file matches"), ("empty", "no videos")],
)
def test_inputs_that_name_nothing_are_usage_errors(tmp_path, name, needle):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=needle) as raised:
        expand_inputs([str(tmp_path / name)])
    assert raised.value.parameter == "inputs"


def test_outputs_are_named_after_inputs_and_same_stems_do_not_collide(tmp_path):
    sources = [tmp_path / "a" / "clip.mp4", tmp_path / "b" / "clip.avi", tmp_path / "x.avi"]
    jobs = plan_jobs(sources, tmp_path / "out")
    names = [path.name for job in jobs for path in job.outputs.values()]
    assert len(set(names)) == len(names) == 9
    assert jobs[2].outputs == {
        "video": tmp_path / "out" / "x.mp4",
        "jsonl": tmp_path / "out" / "x.jsonl",
        "summary": tmp_path / "out" / "x.summary.json",
    }
    assert plan_jobs(sources, tmp_path / "out") == jobs, "a rerun maps inputs to the same names"
    video_less = plan_jobs(sources[2:], tmp_path / "out", video=False)[0]
    assert set(video_less.outputs) == {"jsonl", "summary"}
    assert partial_path(tmp_path / "x.mp4").name == "x.partial.mp4"


def test_manifest_keeps_the_latest_line_per_input_and_skips_a_torn_line(tmp_path):
    path = tmp_path / "manifest.jsonl"
    with ManifestWriter(path) as manifest:
        manifest.append(Record("/v/a.mp4", "failed", 1, error="broken"))
        manifest.append(Record("/v/a.mp4", "done", 2, frames=10))
    with path.open("a") as file:
        file.write('{"input": "/v/b.mp4", "sta')  # killed mid-write
    with ManifestWriter(path) as manifest:
        manifest.append(Record("/v/c.mp4", "done", 1, outputs={"jsonl": OutputFile("/o", "ab")}))
    latest = read_manifest(path)
    assert set(latest) == {"/v/a.mp4", "/v/c.mp4"}
    assert (latest["/v/a.mp4"].status, latest["/v/a.mp4"].attempts) == ("done", 2)
    assert latest["/v/c.mp4"].outputs["jsonl"] == OutputFile("/o", "ab")
    assert read_manifest(tmp_path / "none.jsonl") == {}


def test_an_input_is_complete_only_with_its_settings_and_unchanged_outputs(tmp_path):
    settings = BatchSettings(ModelSpec("m", tmp_path / "m.h5", "tinynet", ("BG", "a")))
    job = plan_jobs([tmp_path / "v.mp4"], tmp_path, video=False)[0]
    for path in job.outputs.values():
        _touch(path, path.name)
    outputs = {kind: OutputFile(str(p), sha256_of(p)) for kind, p in job.outputs.items()}
    record = Record(str(job.source), "done", 1, outputs=outputs, settings=settings.fingerprint())
    assert is_complete(job, record, settings)
    other = BatchSettings(settings.spec, threshold=0.9)
    assert not is_complete(job, record, other), "other settings redo the input"
    job.jsonl.write_text("changed")
    assert not is_complete(job, record, settings)
    job.jsonl.unlink()
    assert not is_complete(job, record, settings)
    assert not is_complete(job, None, settings)


def test_a_worker_that_does_not_see_the_drivers_marker_names_the_shared_storage_rule(tmp_path):
    from livesegment.batch.worker import OutputMarker

    shared = tmp_path / "shared"
    shared.mkdir()
    marker = OutputMarker(shared / ".livesegment-batch-1", "token-1")
    marker.path.write_text("token-1")
    assert marker.problem() is None
    assert not [p for p in shared.iterdir() if p != marker.path], "the write probe is removed"

    # Another machine's folder of the same name: no marker, or another batch's.
    elsewhere = OutputMarker(tmp_path / "local" / ".livesegment-batch-1", "token-1")
    problem = elsewhere.problem()
    assert problem is not None and "storage every node mounts at the same path" in problem
    assert str(elsewhere.path.parent) in problem and "\n" not in problem
    marker.path.write_text("token-2")
    assert marker.problem() is not None


def test_batch_settings_pass_runs_network_and_drawing_options_and_redo_when_they_change():
    from livesegment.output.overlay import OverlayStyle

    spec = ModelSpec("m", Path("m.h5"), "tinynet", ("BG", "a"))
    plain = BatchSettings(spec=spec)
    styled = BatchSettings(
        spec=spec, rois=50, max_instances=5, style=OverlayStyle(masks=False, boxes=False)
    )
    options = styled.run_options("clip.mp4")
    assert (options.rois, options.max_instances, options.style) == (
        50,
        5,
        OverlayStyle(masks=False, boxes=False),
    )
    assert plain.fingerprint() != styled.fingerprint(), "other outputs: a rerun redoes them"
