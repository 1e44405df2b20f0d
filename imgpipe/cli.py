"""The ``imgpipe`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from imgpipe import __version__
from imgpipe.config import add_config_arguments, config_from_namespace
from imgpipe.labelers import LABELER_NAMES, LabelerUnavailable
from imgpipe.progress import ProgressReporter
from imgpipe.runner import NothingToDo, UsageError, run_pipeline


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imgpipe", description="Image processing and analysis pipeline (local or on AWS)."
    )
    parser.add_argument("--version", action="version", version=f"imgpipe {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="run ingest -> process -> analyze -> report on local files",
        description="Run the whole pipeline locally. OUT is laid out like the S3 bucket; "
        "re-runs into the same OUT reuse earlier work.",
    )
    run.add_argument(
        "input_dir", type=Path, metavar="INPUT_DIR", help="folder of images (recursive)"
    )
    run.add_argument("--out", type=Path, required=True, metavar="OUT_DIR", help="output folder")
    run.add_argument(
        "--labeler",
        choices=LABELER_NAMES,
        default="local",
        help="local: offline model (needs imgpipe[local]); none: no labels; rekognition: "
        "Amazon Rekognition with your AWS credentials, billed per image (default: local)",
    )
    run.add_argument("--creator", default=None, help="creator of every input (overrides EXIF)")
    run.add_argument("-q", "--quiet", action="store_true", help="print only the report path")
    tuning = run.add_argument_group("tuning")
    add_config_arguments(tuning)

    samples = commands.add_parser(
        "samples", help="write the demo photos (from scikit-image) into a folder"
    )
    samples.add_argument("target", type=Path, metavar="DIR")
    add_aws_commands(commands)
    return parser


def add_aws_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``imgpipe aws upload|run|report|check``: operate the deployed pipeline."""
    aws = commands.add_parser(
        "aws",
        help="operate the pipeline deployed to AWS (upload, run, report, check)",
        description="Operate the deployed pipeline; the bucket and state machine are read "
        "from the CloudFormation stack's outputs.",
    )
    aws_commands = aws.add_subparsers(dest="aws_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--stack", default="Imgpipe", help="stack name (default: Imgpipe)")
    common.add_argument("--region", default=None, help="AWS region (default: your AWS config)")
    upload = aws_commands.add_parser(
        "upload", parents=[common], help="upload a folder of images to ingest/ (skips unchanged)"
    )
    upload.add_argument("directory", type=Path, metavar="DIR")
    upload.add_argument("--creator", default=None, help="creator of every file (S3 metadata)")
    run = aws_commands.add_parser(
        "run", parents=[common], help="start a pipeline execution (process, analyze, report)"
    )
    run.add_argument("--wait", action="store_true", help="follow it and print the report URI")
    report = aws_commands.add_parser(
        "report", parents=[common], help="print (or download) the newest report"
    )
    report.add_argument("--run-id", default=None, help="a given run instead of the newest")
    report.add_argument(
        "--download", type=Path, default=None, metavar="DIR", help="copy it here to open offline"
    )
    check = aws_commands.add_parser(
        "check",
        parents=[common],
        help="after deploying: send one sample photo through ingest, a run and the report",
        description="Upload one small photo under ingest/_imgpipe-check/, wait for its record, "
        "run the pipeline, confirm the report, then remove the sample and its record.",
    )
    check.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=300.0,
        metavar="SECONDS",
        help="how long to wait for the ingest Lambda's record (default: 300)",
    )


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return seconds


def _during_an_interrupt(error: BaseException | None) -> bool:
    """Whether ``error`` is a Ctrl-C, or was raised while one unwound (in its context chain)."""
    for _ in range(10):  # a context chain is short; the bound only guards against a cycle
        if error is None:
            return False
        if isinstance(error, KeyboardInterrupt):
            return True
        error = error.__context__
    return False


def _not_about_an_interrupt(record: logging.LogRecord) -> bool:
    """False for a record logged while a Ctrl-C unwinds (its exception or one it interrupted)."""
    return not _during_an_interrupt(record.exc_info[1] if record.exc_info else None)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "aws":
        return _aws(args)
    # py4j logs a Ctrl-C that reaches it mid-call, and errors closing its sockets then, with
    # tracebacks (on the root logger and its own) before re-raising it; the interrupt is
    # reported once, below.
    for name in ("", "py4j.java_gateway", "py4j.clientserver"):
        logging.getLogger(name).addFilter(_not_about_an_interrupt)
    try:
        if args.command == "samples":
            from imgpipe.samples import write_samples

            written = write_samples(args.target)
            print(f"wrote {len(written)} sample files to {args.target}")
            return 0
        config = config_from_namespace(args)
        summary = run_pipeline(
            args.input_dir,
            args.out,
            labeler_name=args.labeler,
            creator=args.creator,
            config=config,
            progress=ProgressReporter(quiet=args.quiet),
        )
    except BaseException as exc:
        # First, for any exception: a cleanup step that fails while a Ctrl-C unwinds (py4j's
        # connection to the JVM cut off mid-call) is still that interrupt. Each stage writes its
        # outputs whole or not at all: an interrupted run leaves no half-written file, and the
        # next run starts over from what is complete.
        if _during_an_interrupt(exc):
            print("imgpipe: interrupted", file=sys.stderr)
            return 130
        if isinstance(exc, NothingToDo):
            print(f"imgpipe: {exc}", file=sys.stderr)
            return 0
        if isinstance(exc, (UsageError, LabelerUnavailable, ValueError, RuntimeError)):
            print(f"imgpipe: error: {exc}", file=sys.stderr)
            return 2
        raise  # anything else is a bug and keeps its traceback
    if not args.quiet:
        print(summary.describe())
    print(f"report: {args.out / summary.report}")
    return 0


def _aws(args: argparse.Namespace) -> int:
    from imgpipe import aws_check, aws_ops  # boto3 loads only for the aws commands

    try:
        return aws_ops.main(args)
    except aws_check.CheckFailed as exc:
        print(f"imgpipe: check failed: {exc}", file=sys.stderr)
        return 1
    except aws_ops.RunFailed as exc:
        print(f"imgpipe: run failed: {exc}", file=sys.stderr)
        return 1
    except aws_ops.OpsError as exc:
        print(f"imgpipe: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
