#!/usr/bin/env python3
"""Take what a window of tools/caffe/gpu_paper_run.py returned (the files of its $OUT, copied here) and
turn each returned run into a run folder here, and keep what the next window resumes.

    tools/caffe/adopt_gpu_runs.py FOLDER [--runs-dir runs/gpu-paper] [--partial results/paper/partial]

For each <job>.tar.gz named in FOLDER/session.json: the run folder goes to RUNS_DIR/<job> (replacing
an older one), its learning curve is redrawn from all its logs, and its provenance.json gains
"gpu_windows": one record per window that trained it (GPU, driver, CUDA runtime and cuDNN versions,
NVIDIA_TF32_OVERRIDE, batching form, solver label, concurrency, seconds, iterations, images/s).
A finished run (final.caffemodel, or the job's stop iteration reached) leaves
PARTIAL/<job>.finished.json; an unfinished one leaves PARTIAL/<job>.tar.gz, which the next
`tools/caffe/gpu_paper_run.py prepare` and window resume. Commit PARTIAL: the next window, from any
clone, starts from it.
"""
import argparse
import json
import shutil
import sys
from pathlib import Path

import _init_paths  # noqa: F401  (tools/ on sys.path)
from sdc import atomic, caffe_log, hashing, paper_kit, provenance, training
from sdc.errors import UserError, run_main


def adopt_job(name, entry, folder, runs_dir, partial_dir):
    """Install one returned run folder; returns the line to print."""
    archive = folder / entry["returned_file"]
    if not archive.is_file():
        raise UserError(f"{archive} is missing: copy every file the window returned into {folder}")
    run_dir = runs_dir / name
    with atomic.atomic_path(run_dir) as tmp:
        staging = tmp.parent / "unpacked"   # inside atomic_path's temporary folder, removed with it
        (top,) = paper_kit.unpack(archive, staging)
        if top != name:
            raise UserError(f"{archive} holds {top}/, not {name}/: it was not written by tools/caffe/gpu_paper_run.py")
        (staging / top).rename(tmp)
    windows = paper_kit.read_json(run_dir / paper_kit.WINDOWS_FILE, [])
    record = provenance.read(run_dir)
    record["gpu_windows"] = windows
    atomic.write_text(run_dir / provenance.FILE_NAME, json.dumps(record, indent=2) + "\n")
    title = f"{name}, {paper_kit.SOLVER_LABELS[name]}, {entry['batching']} batching ({run_dir.name})"
    caffe_log.write_learning_curve(run_dir, title)
    finished = entry["returned_iteration"] is not None and entry["returned_iteration"] >= entry["target_iteration"]
    partial = partial_dir / paper_kit.job_named(name).returned_file
    done_note = partial_dir / f"{name}.finished.json"
    if finished:
        final = run_dir / training.FINAL_MODEL
        note = {"iteration": entry["returned_iteration"], "target_iteration": entry["target_iteration"],
                "run_dir": provenance.shown(run_dir), "windows": len(windows),
                "final_caffemodel_sha1": hashing.sha1_file(final) if final.is_file() else None}
        atomic.write_text(done_note, json.dumps(note, indent=1) + "\n")
        partial.unlink(missing_ok=True)
        return f"{name}: finished at iteration {entry['returned_iteration']} -> {run_dir}"
    if entry["returned_iteration"] is None:
        partial.unlink(missing_ok=True)
        return (f"{name}: no snapshot on an epoch boundary came back (reached {entry['reached']}): "
                f"the next window starts it again; run folder {run_dir}")
    with atomic.atomic_path(partial) as tmp:
        shutil.copyfile(archive, tmp)
    return (f"{name}: iteration {entry['returned_iteration']} of {entry['target_iteration']}; "
            f"the next window resumes it from {partial}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("folder", type=Path, help="the files a window returned ($OUT)")
    parser.add_argument("--runs-dir", type=Path, default=paper_kit.RUNS_DIR, help="default: %(default)s")
    parser.add_argument("--partial", type=Path, default=paper_kit.PARTIAL_DIR, help="default: %(default)s")
    args = parser.parse_args(argv)
    session = paper_kit.read_json(args.folder / paper_kit.SESSION_FILE)
    if session is None:
        raise UserError(f"{args.folder / paper_kit.SESSION_FILE} not found: pass the folder holding the files "
                        "tools/caffe/gpu_paper_run.py run wrote")
    jobs = session.get("jobs", {})
    if not jobs:
        print(f"{args.folder}: this window trained nothing (see {paper_kit.SUMMARY_FILE})", file=sys.stderr)
        return 1
    for name, entry in jobs.items():
        print(adopt_job(name, entry, args.folder, args.runs_dir, args.partial))
    return 0


if __name__ == "__main__":
    run_main(main)
