"""``cdn-prefetch``: the command line (parsing, prompts, exit statuses); the work is in ``cli/run.py``.

Progress goes to stderr: a live display on a terminal, the plain lines ``pulumi up`` shows as diagnostics
in CI and pipes (``cli/progress.py``; ``apply --progress auto|live|plain``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, NoReturn, Optional, Sequence, TextIO

from . import run
from .context import Context, add_config_flags, load_context
from .progress import MODES, ProgressDisplay, live_wanted
from .render import DEFAULT_MAX_ROWS, plan_text, summary_line
from .state import StateFile
from .validate import validate
from ..clouds.base import CloudError
from ..clouds.factory import sandbox_package
from ..declare.declarations import load_sets
from ..declare.model import DeclarationError
from ..declare.origin import OriginError, resolve_origins
from ..declare.sitemap import resolve_sitemaps
from ..report.cli import main as report_main
from ..report.cli import unexpected

PROG = "cdn-prefetch"
EXIT_OK, EXIT_ERROR, EXIT_DRIFT, EXIT_INTERRUPTED = 0, 1, 2, 130

EPILOG = """\
exit status:
  0  validate: every file valid; plan, apply, report: every target warm
  2  plan, report: drift (a target is not warm); apply: some target is still not warm after the wait
  1  an error: invalid declarations or config, a refused change, a failed cloud call
  130 interrupted (every task id submitted so far is in the state file and the cloud's history)

Run `cdn-prefetch COMMAND --help` for a command's options. Credentials come from the environment
(TENCENTCLOUD_SECRET_ID/TENCENTCLOUD_SECRET_KEY, UCLOUD_PUBLIC_KEY/UCLOUD_PRIVATE_KEY) or a file
(--credentials FILE or $CDN_PREFETCH_CREDENTIALS), never from flags.
"""


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message}")  # argparse's own exit 2 would mean "drift"


def _rows(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Keep declared CDN prefetch sets warm, without the Pulumi CLI.",
                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show the traceback of unexpected errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    check = sub.add_parser("validate", help="check declarations against the schema (offline); exit 1 on any problem")
    check.add_argument("paths", nargs="*", metavar="PATH", help="files or folders (default: the sets folder)")
    add_config_flags(check)

    plan = sub.add_parser("plan", help="what an apply would do, target by target; exit 2 on drift")
    add_config_flags(plan)
    plan.add_argument("--output", metavar="FILE", help="also write the audit record of what was read (JSON)")
    plan.add_argument("--max-rows", type=_rows, default=DEFAULT_MAX_ROWS, metavar="N",
                      help="targets listed per destination (default: %(default)s; 0 = all)")

    apply = sub.add_parser("apply", help="submit what needs it, wait, report; write the audit record")
    add_config_flags(apply)
    apply.add_argument("--yes", "-y", action="store_true", help="submit without asking (needed without a terminal)")
    apply.add_argument("--allow-large-changes", action="store_true",
                       help="consent, for this run, to what exceeds a set's safety rails (cdn-prefetch:"
                            "allowLargeChanges)")
    apply.add_argument("--output", metavar="FILE", help="write the audit record there (default: stdout)")
    apply.add_argument("--max-rows", type=_rows, default=DEFAULT_MAX_ROWS, metavar="N",
                       help="targets listed per destination in the plan (default: %(default)s; 0 = all)")
    apply.add_argument("--progress", choices=MODES, default="auto",
                       help="a live display (bars redrawn on every poll) or plain lines every 30 s; auto: live on "
                            "a terminal, plain in CI (CI set) and pipes (default: %(default)s)")

    sub.add_parser("report", add_help=False, help="the drift report (table, markdown or JSON); --help for options")
    sub.add_parser("sandbox", add_help=False, help="serve or steer the local emulator; --help for options")
    return parser


def main(argv: Optional[Sequence[str]] = None, *, env: Optional[Mapping[str, str]] = None,
         stdin: Optional[TextIO] = None, stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None) -> int:
    """Run one command; returns its exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    out, err = stdout or sys.stdout, stderr or sys.stderr
    environ = os.environ if env is None else env
    if args_list and args_list[0] == "report":
        return report_main(args_list[1:], env=environ, stdout=out, stderr=err, prog=f"{PROG} report",
                           require_project=False)
    if args_list and args_list[0] == "sandbox":
        return sandbox_package("__main__").main(args_list[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except UsageError as exc:
        err.write(parser.format_usage() + f"{exc}\n")
        return EXIT_ERROR
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    commands: dict[str, Callable[..., int]] = {"validate": _validate, "plan": _plan, "apply": _apply}
    try:
        return commands[args.command](args, environ, stdin or sys.stdin, out, err)
    except (DeclarationError, OriginError) as exc:
        err.write(f"{exc}\n")
    except (CloudError, ValueError) as exc:  # ConfigError is a ValueError
        err.write(f"{PROG} {args.command}: {exc}\n")
    except KeyboardInterrupt:
        err.write(f"{PROG} {args.command}: interrupted; every task submitted so far is recorded, and the next plan "
                  "or apply finds it in the cloud's history\n")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the one place that turns anything into a clean exit 1
        unexpected(exc, err, f"{PROG} {args.command}", debug=args.debug)
    return EXIT_ERROR


def _validate(args: argparse.Namespace, env: Mapping[str, str], _stdin: TextIO, out: TextIO, err: TextIO) -> int:
    paths = [Path(p) for p in args.paths] or [load_context(args, env).sets_dir]
    valid, problems = validate(paths)
    for problem in problems:
        err.write(f"{problem}\n")
    if problems:
        err.write(f"{PROG} validate: {len(problems)} problem{'s' if len(problems) != 1 else ''}\n")
        return EXIT_ERROR
    out.write(f"{PROG} validate: {valid} set{'s' if valid != 1 else ''} valid\n")
    return EXIT_OK


def _declared_shards(context: Context, err: TextIO) -> list[run.Shard]:
    """The sets (origins listed, sitemaps read) as the program's shards."""
    declarations = load_sets(context.sets_dir)
    needs_keys = any(d.origin is not None and d.origin.credentials_config for d in declarations)
    declarations = resolve_origins(declarations, credentials_table=context.origin_credentials if needs_keys else None,
                                   warn=lambda text: err.write(f"warning: {text}\n"),
                                   info=lambda text: err.write(f"{text}\n"))
    declarations = resolve_sitemaps(declarations, warn=lambda text: err.write(f"warning: {text}\n"),
                                    info=lambda text: err.write(f"{text}\n"))
    for decl in declarations:
        if decl.duplicates:
            err.write(f"warning: {decl.duplicates_warning()}\n")
    return run.shards_of(declarations)


def _read(args: argparse.Namespace, env: Mapping[str, str], err: TextIO, record: bool,
          display: Optional[ProgressDisplay] = None) -> tuple[Context, StateFile, list[run.Shard]]:
    context = load_context(args, env)
    where = context.config.stack_file or "no stack file (flags, environment and defaults)"
    err.write(f"{PROG} {args.command}: stack {context.stack}: config from {where}\n")
    state = StateFile(context.state_path)
    shards = _declared_shards(context, err)
    run.connect(shards, context.settings, allow_large_changes=context.allow_large_changes,
                log=display.log if display else err, record=state.record_task if record else None,
                on_progress=display.on_progress if display else None)
    run.observe(shards, state.prior, err)
    return context, state, shards


def _plan(args: argparse.Namespace, env: Mapping[str, str], _stdin: TextIO, out: TextIO, err: TextIO) -> int:
    _, _, shards = _read(args, env, err, record=False)
    out.write(plan_text(shards, args.max_rows))
    totals = run.totals(shards)
    if args.output:
        _write_json(Path(args.output), run.audit_record(shards))
    err.write(summary_line("plan", totals))
    if totals.errors:
        return EXIT_ERROR
    return EXIT_DRIFT if totals.not_warm else EXIT_OK


def _apply(args: argparse.Namespace, env: Mapping[str, str], stdin: TextIO, out: TextIO, err: TextIO) -> int:
    display = ProgressDisplay(err, live_wanted(args.progress, err, env))
    _, state, shards = _read(args, env, err, record=True, display=display)
    err.write(plan_text(shards, args.max_rows))
    due = sum(run.needs_tasks(shard) for shard in shards if shard.error is None)
    if due and not args.yes and not _confirm(due, stdin, err):
        return EXIT_ERROR
    before = sum(len(shard_state.get("submitted") or []) for shard_state in state.shards.values())
    # The state as the run starts: the tasks recorded during it join the outputs once, from the result.
    prior = {name: {**entry, "submitted": list(entry.get("submitted") or [])} for name, entry in state.shards.items()}
    with display.showing():
        run.converge(shards, prior.get, state.record_outputs, display.log)
    submitted = sum(len(shard_state.get("submitted") or []) for shard_state in state.shards.values()) - before
    record = run.audit_record(shards)
    if args.output:
        _write_json(Path(args.output), record)
    else:
        out.write(json.dumps(record, indent=2, sort_keys=True) + "\n")
        out.flush()
    totals = run.totals(shards)
    err.write(summary_line("apply", totals, submitted))
    if totals.errors:
        return EXIT_ERROR
    return EXIT_DRIFT if totals.not_warm else EXIT_OK


def _confirm(due: int, stdin: TextIO, err: TextIO) -> bool:
    """Ask on a terminal; without one, refuse (a CI job must say --yes rather than hang or guess)."""
    question = f"apply: {due} targets need a task (above). Submit? [y/N] "
    if not stdin.isatty():
        err.write(f"{question}\n{PROG} apply: stdin is not a terminal, so it cannot ask: pass --yes to submit\n")
        return False
    err.write(question)
    err.flush()
    answer = stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        err.write(f"{PROG} apply: nothing submitted\n")
        return False
    return True


def _write_json(path: Path, record: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
