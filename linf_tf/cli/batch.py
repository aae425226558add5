"""Folder and batch mode: which (source, target) pairs a command works on, and running them.

One file in gives one file out with its facts printed; several files or a folder give a batch:
every file into the output folder (sub-folders mirrored with ``-r``), a progress bar, failures
reported by name without stopping, and a summary; the exit status is then 2 if any file failed.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from linf_tf.cli.common import CliError, FileResult, is_sidecar, report_failure
from linf_tf.progress import progress_bar


@dataclass
class Plan:
    """The (source, target) pairs of one command; ``batch``: several files, summary at the end."""

    jobs: list[tuple[Path, Path]]
    batch: bool
    skipped: int = 0  # files in input folders that are not of the kind the command reads


def thread_count(args: argparse.Namespace) -> int:
    """The -j value: given, or every core."""
    given = getattr(args, "threads", None)
    return given if given is not None else max(1, os.cpu_count() or 1)


def plan(
    inputs: list[Path], output: str, wanted: Callable[[Path], bool], output_suffix: str, recursive: bool
) -> Plan:
    """One file in, a file (or folder) out; otherwise every file into the output folder.

    The output is a folder when it ends with a path separator, already is one, or there is more
    than one input file; a missing folder is created. Files named on the command line are all
    processed (a wrong one fails with its reason); in folders, only ``wanted`` files are.
    """
    out = Path(output)
    wants_folder = output.endswith(("/", os.sep)) or out.is_dir()
    if len(inputs) == 1 and not inputs[0].is_dir():
        source = inputs[0]
        target = out / source.with_suffix(output_suffix).name if wants_folder else out
        return Plan(jobs=[(source, target)], batch=False)
    if out.exists() and not out.is_dir():
        raise CliError(f"with several inputs or a folder, the output must be a folder; {out} is a file")
    jobs, skipped = [], 0
    for item in inputs:
        if not item.is_dir():
            jobs.append((item, out / item.with_suffix(output_suffix).name))
            continue
        for path in folder_files(item, recursive):
            if wanted(path):
                jobs.append((path, out / path.relative_to(item).with_suffix(output_suffix)))
            elif not is_sidecar(path):
                skipped += 1
    if not jobs:
        raise CliError(f"no files to process in {', '.join(str(item) for item in inputs)}")
    _refuse_duplicate_targets(jobs)
    return Plan(jobs=jobs, batch=True, skipped=skipped)


def folder_files(folder: Path, recursive: bool) -> list[Path]:
    """The files of ``folder`` (and its sub-folders with ``recursive``), sorted."""
    return sorted(path for path in (folder.rglob("*") if recursive else folder.iterdir()) if path.is_file())


def _refuse_duplicate_targets(jobs: list[tuple[Path, Path]]) -> None:
    seen: dict[Path, Path] = {}
    for source, target in jobs:
        if target in seen:
            raise CliError(f"{seen[target]} and {source} would both be written to {target}")
        seen[target] = source


def execute(
    verb: str, plan: Plan, process: Callable[[Path, Path, bool, int], FileResult], threads: int = 1
) -> int:
    """One file (facts printed) on ``threads`` threads, or a batch (summary) ``threads`` files at a time."""
    if not plan.batch:
        (source, target), = plan.jobs
        process(source, target, True, threads)
        return 0
    # Files in parallel; each file's own threads share out the rest (the bytes never depend on them).
    workers = max(1, min(threads, len(plan.jobs)))
    per_file = max(1, threads // workers)
    return _run_batch(verb, plan, lambda source, target: process(source, target, False, per_file), workers)


def _run_batch(verb: str, plan: Plan, process: Callable[[Path, Path], FileResult], workers: int = 1) -> int:
    """Process every job, report failures by name without stopping, print a summary; 2 if any failed.

    With ``workers`` > 1 the files are processed by a thread pool (the codec releases the GIL);
    results and failures are still reported in the plan's order, so the output is that of one
    worker."""
    results: list[tuple[Path, FileResult]] = []
    failures = 0

    def attempt(source: Path, target: Path) -> tuple[FileResult | None, BaseException | None]:
        try:
            return process(source, target), None
        except Exception as exc:  # noqa: BLE001 - one bad file must not end the batch
            return None, exc

    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = [(source, pool.submit(attempt, source, target)) for source, target in plan.jobs]
        for source, future in progress_bar(pending, desc=verb, unit="file"):
            result, exc = future.result()
            if exc is not None:
                failures += 1
                report_failure(source, exc)
            else:
                assert result is not None
                results.append((source, result))
    _print_summary(verb, [result for _, result in results], failures, plan.skipped)
    notes = [(source, result.note) for source, result in results if result.note]
    for source, note in notes:
        print(f"  {source}: {note}")
    return 2 if failures else 0


def _print_summary(verb: str, results: list[FileResult], failures: int, skipped: int) -> None:
    done = f"{verb}d" if verb.endswith("e") else f"{verb}ed"
    counts = f"{done} {len(results)} file(s), {failures} failed"
    if skipped:
        counts += f", {skipped} skipped (not the files {verb} reads)"
    stream = sum(result.stream_bytes for result in results)
    if not stream:
        print(counts)
        return
    raw = sum(result.raw_bytes for result in results)
    samples = sum(result.samples for result in results)
    print(
        f"{counts}: raw {raw:,} bytes, streams {stream:,} bytes, ratio {raw / stream:.3f}:1, "
        f"mean bits per sample {8 * stream / samples:.4f} (over all samples)"
    )
