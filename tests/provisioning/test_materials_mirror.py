"""The materials a workspace sees follow the materials page: the course's S3 prefix mirrored into the folder the
local runtime's sandboxes mount read-only (new and changed files fetched, renamed and deleted ones removed)."""

from __future__ import annotations

from provisioning.materials_mirror import MirrorPlan, local_files, mirror_materials, plan_mirror

COURSE = "c-7"


def test_plan_fetches_new_and_changed_and_removes_gone():
    plan = plan_mirror({"a.csv": 3, "hw1/b.csv": 5, "same.txt": 1}, {"a.csv": 2, "old.txt": 9, "same.txt": 1})
    assert plan == MirrorPlan(fetch=["a.csv", "hw1/b.csv"], remove=["old.txt"])


def test_uploads_renames_and_deletes_reach_the_mounted_folder(backend, tmp_path):
    root = tmp_path / "materials"
    root.mkdir()
    backend.upload_material(COURSE, "datasets/week1/big.bin", b"x" * 1000, overwrite=False)
    backend.upload_material(COURSE, "syllabus.pdf", b"pdf", overwrite=False)
    mirror_materials(backend, COURSE, root)
    assert local_files(root) == {"datasets/week1/big.bin": 1000, "syllabus.pdf": 3}
    assert (root / "datasets/week1/big.bin").read_bytes() == b"x" * 1000

    from provisioning.aws_materials import MaterialUploads

    MaterialUploads(backend).rename(COURSE, "datasets/week1/big.bin", "datasets/week2/big.bin")
    MaterialUploads(backend).delete(COURSE, "syllabus.pdf")
    plan = mirror_materials(backend, COURSE, root)
    assert plan == MirrorPlan(fetch=["datasets/week2/big.bin"], remove=["datasets/week1/big.bin", "syllabus.pdf"])
    assert local_files(root) == {"datasets/week2/big.bin": 1000}
    assert mirror_materials(backend, COURSE, root) == MirrorPlan([], [])  # nothing changed: nothing fetched


def test_a_key_that_climbs_out_of_the_prefix_is_never_written_outside(backend, tmp_path):
    root = tmp_path / "materials"
    root.mkdir()
    backend.s3.put_object(Bucket=backend.bucket, Key=f"courses/{COURSE}/materials/../escape.txt", Body=b"no")
    assert dict(backend.list_materials(COURSE)) == {"../escape.txt": 2}  # the storage keeps such a key as is
    mirror_materials(backend, COURSE, root)
    assert not (tmp_path / "escape.txt").exists() and local_files(root) == {}
