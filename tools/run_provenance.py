#!/usr/bin/env python3
"""provenance.json of a whole tools/run_all.sh run, next to its tables.

    tools/run_provenance.py --out results/<profile> --stages runs/<profile>/run_all-<time>.stages.tsv
                            --command "tools/run_all.sh ..." [--gpu N] [--from DIR ...]

--stages is run_all.sh's record of its stages, one `<seconds since start>\\t<stage>` line each, the last
being "done in N s"; each stage's wall time is the time to the next line. The seeds are gathered from
the provenance.json files the steps wrote under the --from folders (training runs, evaluations, the
enhanced set, the LMDBs), keyed by the folder each came from, relative to the parent of its --from
folder (e.g. smoke/logs/SDC-SN, work/enhanced): the record names no machine path.
"""
import argparse
import json
from pathlib import Path

from sdc import cli, provenance
from sdc.errors import UserError, run_main


def stage_times(path):
    """{stage: seconds} from run_all.sh's stage lines, in run order, and the total."""
    try:
        lines = [line.split("\t", 1) for line in Path(path).read_text().splitlines() if line.strip()]
        starts = [(int(seconds), name) for seconds, name in lines]
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a run_all.sh stage record ({e})") from None
    if not starts:
        raise UserError(f"{path}: no stage lines")
    times = {name: end - start for (start, name), (end, _) in zip(starts, starts[1:])}
    times["total"] = starts[-1][0]
    return times


def gathered_seeds(folders, own):
    """{folder: its non-empty seeds} of every provenance.json under ``folders`` but ``own``, each folder
    named relative to the parent of the one of ``folders`` it lies in."""
    seeds = {}
    for folder in folders:
        base = Path(folder).resolve().parent
        for path in sorted(Path(folder).resolve().rglob(provenance.FILE_NAME)):
            if path == own.resolve():
                continue
            record = json.loads(path.read_text())
            if record.get("seeds"):
                key = path.parent.relative_to(base).as_posix()
                if key in seeds:
                    raise UserError(f"two --from folders hold {key}: give folders with different names")
                seeds[key] = record["seeds"]
    return seeds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--out", type=Path, required=True, help="the run's results folder")
    parser.add_argument("--stages", type=Path, required=True, help="run_all.sh's stage record")
    parser.add_argument("--command", required=True, help="the run_all.sh command line")
    cli.add_gpu(parser, "the GPU the run used")
    parser.add_argument("--from", dest="folders", type=Path, nargs="+", default=[],
                        help="folders whose provenance.json seeds are gathered")
    args = parser.parse_args()
    seeds = gathered_seeds(args.folders, own=args.out / provenance.FILE_NAME)
    record = provenance.write(args.out, gpu=args.gpu, seeds=seeds, wall_times=stage_times(args.stages),
                              command=args.command)
    print(f"provenance: {args.out / provenance.FILE_NAME} ({record['wall_times_s']['total']} s in "
          f"{len(record['wall_times_s']) - 1} stages)")
    return 0


if __name__ == "__main__":
    run_main(main)
