"""``python -m components.report``: the drift report, with no Pulumi CLI and no Pulumi state.

Reads the stack's config file (``Pulumi.<stack>.yaml``, with the defaults declared in
``Pulumi.yaml``), loads the declarations, and reads every set's live status on every destination
through the same adapters and reconcile code the provider uses (``adapter_for`` +
``ShardSync.observe()``). Read-only: it never submits. The report itself is built and
rendered by the pure ``report/model.py`` and ``report/renderers.py``, and the stack's config read by
``report/stack_config.py``; this module is the command line and does the cloud reads.

Encrypted config values (``{secure: ...}``) cannot be decrypted without the Pulumi CLI, so they
count as absent: credentials then come from the environment (``TENCENTCLOUD_SECRET_ID`` /
``TENCENTCLOUD_SECRET_KEY``; UCloud: ``UCLOUD_PUBLIC_KEY`` / ``UCLOUD_PRIVATE_KEY``).
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import traceback
from pathlib import Path
from typing import Mapping, NoReturn, Optional, Sequence, TextIO

from ..clouds.base import CloudError
from ..clouds.factory import adapter_for
from ..clouds.history import HistoryCache
from ..declare.declarations import load_sets
from ..declare.model import DeclarationError, PrefetchSetDeclaration
from ..engine.settings import PROJECT, SANDBOX, settings_from_config
from ..model.clouds import cloud, cloud_keys, credential_families
from ..model.connection import ConfigError, ProviderSettings
from .model import EXIT_ERROR, DestinationReading, Report, build_report
from .renderers import (
    FORMATS,
    MARKDOWN_MAX_ROWS,
    render_json,
    render_markdown,
    render_table,
    summary_line,
)
from .stack_config import (
    StackConfig,
    _under,
    config_getter,
    load_stack_config,
    parse_endpoint_overrides,
    stack_file_path,
)
from ..resource.converge import ShardSync, utcnow
from ..resource.inputs import ShardInputs

DEFAULT_STACK = "dev"
DEFAULT_SETS_DIR = "prefetch-sets"

EXIT_STATUS = """\
exit status:
  0  every target is warm
  2  drift: at least one target is not warm (failed, timed out, expired, missing, unknown,
     or still queued/running)
  1  error: invalid declarations or config, a cloud call failed, or anything unexpected
"""


def usage_epilog() -> str:
    """The exit statuses, and where credentials come from (each credential family of the registry)."""
    first, *others = credential_families()
    pairs = f"{first.env_keys[0]} and {first.env_keys[1]}"
    if others:
        pairs += " (" + "; ".join(f"{f.title}: {f.env_keys[0]} and {f.env_keys[1]}" for f in others) + ")"
    text = ("Credentials are read from the stack file only when stored in plain text; encrypted values "
            f"({{secure: ...}}) need the Pulumi CLI, so the report reads {pairs} from the environment.")
    return EXIT_STATUS + "\n" + textwrap.fill(text, width=95) + "\n"


def check_credentials(declarations: Sequence[PrefetchSetDeclaration], settings: ProviderSettings,
                      config: StackConfig) -> None:
    """Fail before any call when a real cloud is used without credentials, saying where the report looks."""
    for decl in declarations:
        for dest in decl.destinations:
            spec = cloud(dest.provider)
            family = spec.credentials
            if settings.endpoint(spec.key).kind == SANDBOX or settings.credentials_for(family.name) is not None:
                continue
            (id_env, secret_env), (id_key, secret_key) = family.env_keys, family.config_keys
            others = "; ".join(f"{other.title}: {other.env_keys[0]} and {other.env_keys[1]}"
                               for other in credential_families() if other.name != family.name)
            message = (f"no {family.title} credentials for {spec.key} (set {decl.name}): the report reads them from "
                       f"{id_env} and {secret_env} in the environment" + (f" ({others})" if others else "")
                       + f", or from plain-text {id_key} and {secret_key} in the stack file")
            if config.encrypted:
                where = config.stack_file.name if config.stack_file else "the stack file"
                message += (f"; {where} holds {', '.join(config.encrypted)} encrypted ({{secure: ...}}), which "
                            "only the Pulumi CLI can decrypt, so export them in the environment instead")
            message += f"; or try it locally with --endpoint {spec.key}=sandbox"
            raise ConfigError(message)


# -- observe ----------------------------------------------------------------------------------------
def observe(declarations: Sequence[PrefetchSetDeclaration], settings: ProviderSettings,
            log: TextIO) -> list[DestinationReading]:
    """Every set on every destination, read-only; a failed cloud call is recorded and the rest still read.

    The sets of one report share their history reads (one per zone), but a report never reuses a
    read of an earlier report in the same process: it says what the clouds say now.
    """
    results: list[DestinationReading] = []
    history = HistoryCache()
    for decl in declarations:
        for dest in decl.destinations:
            unresolved = getattr(dest, "unresolved", {})
            if unresolved:
                # Names (zoneName, domain) are looked up with pulumi-tencentcloud's data sources, which need
                # the Pulumi engine; the report runs without it, so it says so instead of guessing.
                named = ", ".join(f"{key}: {value}" for key, value in unresolved.items())
                message = (f"set {decl.name!r} names its destination by {named}; the drift report cannot look names "
                           "up: write the id (zone: zone-…, area: …) in the declaration, or use `pulumi preview`")
                log.write(f"report: {message}\n")
                results.append(DestinationReading(decl, dest, error=message))
                continue
            try:
                adapter = adapter_for(dest.as_dict(), settings)
                result = ShardSync(adapter, ShardInputs.from_declaration(decl, dest), log=log,
                                         history=history).observe()
            except CloudError as exc:
                log.write(f"report: set {decl.name} on {dest.label}: {exc}\n")
                results.append(DestinationReading(decl, dest, error=str(exc)))
                continue
            results.append(DestinationReading(decl, dest, result.plan, result.verified_at))
    return results


def select_sets(declarations: Sequence[PrefetchSetDeclaration], names: Sequence[str]) -> list[PrefetchSetDeclaration]:
    if not names:
        return list(declarations)
    known = {d.name for d in declarations}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"--set: no set named {', '.join(repr(n) for n in unknown)}; "
                          f"the declared sets are: {', '.join(sorted(known))}")
    return [d for d in declarations if d.name in names]


# -- command line -----------------------------------------------------------------------------------
class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse would exit 2, which means "drift" here.
        raise UsageError(message)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def build_parser(prog: str = "python -m components.report") -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description="Report drift of the declared prefetch sets: reads each target's live status from the "
                    "clouds' task history (read-only, no Pulumi CLI or state needed). Run from the project root.",
        epilog=usage_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stack", default=DEFAULT_STACK,
                        help="stack whose Pulumi.<stack>.yaml supplies the config (default: %(default)s)")
    parser.add_argument("--sets-dir", metavar="DIR",
                        help="folder of prefetch-set declarations (default: cdn-prefetch:setsDir, else prefetch-sets)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: %(default)s)")
    parser.add_argument("--set", dest="sets", action="extend", nargs="+", default=[], metavar="NAME",
                        help="report only these sets (repeatable)")
    parser.add_argument("--endpoint", dest="endpoints", action="append", default=[], metavar="CLOUD=VALUE",
                        help="override cdn-prefetch:endpoints for one cloud: 'sandbox' or a URL (repeatable), "
                             f"e.g. {cloud_keys()[0]}=http://127.0.0.1:8787")
    parser.add_argument("--output", metavar="FILE", help="write the report to FILE instead of stdout")
    parser.add_argument("--max-rows", type=_count, metavar="N",
                        help=f"drifted targets listed per destination in table and markdown "
                             f"(default: all in table, {MARKDOWN_MAX_ROWS} in markdown; 0 = all)")
    parser.add_argument("--cwd", "-C", metavar="DIR", help="project folder (default: the current directory)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of unexpected errors")
    return parser


def render(report: Report, fmt: str, max_rows: Optional[int]) -> str:
    if fmt == "json":
        return render_json(report)
    if fmt == "markdown":
        return render_markdown(report, max_rows=MARKDOWN_MAX_ROWS if max_rows is None else max_rows)
    return render_table(report, max_rows=max_rows)


def main(argv: Optional[Sequence[str]] = None, *, env: Optional[Mapping[str, str]] = None,
         stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None, prog: Optional[str] = None,
         require_project: bool = True) -> int:
    """Run the report; returns the exit status (0 warm, 2 drift, 1 error).

    ``prog``/``require_project``: as ``cdn-prefetch report`` runs it (a folder without Pulumi.yaml is fine)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    environ = os.environ if env is None else env
    parser = build_parser(prog) if prog else build_parser()
    try:
        args = parser.parse_args(argv)
        args.require_project = require_project
    except UsageError as exc:
        err.write(parser.format_usage())
        err.write(f"{parser.prog}: error: {exc}\n")
        return EXIT_ERROR
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    try:
        return _run(args, environ, out, err)
    except DeclarationError as exc:
        err.write(f"{exc}\n")
    except ConfigError as exc:
        err.write(f"report: {exc}\n")
    except CloudError as exc:
        err.write(f"report: {exc}\n")
    except KeyboardInterrupt:
        err.write("report: interrupted\n")
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place that turns anything into a clean exit 1
        unexpected(exc, err, "report", debug=args.debug)
    return EXIT_ERROR


def unexpected(exc: Exception, err: TextIO, prefix: str, *, debug: bool) -> None:
    """An unexpected error in one line (the traceback only with --debug): never a wall of Python."""
    if debug:
        traceback.print_exception(exc, file=err)
    else:
        err.write(f"{prefix}: unexpected error: {type(exc).__name__}: {exc}\n"
                  "run with --debug for the traceback\n")


def _run(args: argparse.Namespace, environ: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    project_dir = Path(args.cwd) if args.cwd else Path.cwd()
    overrides = parse_endpoint_overrides(args.endpoints)
    config = load_stack_config(project_dir, args.stack, require_project=getattr(args, "require_project", True))
    if config.stack_file is not None:
        err.write(f"report: stack config from {config.stack_file}\n")
    else:
        err.write(f"report: no {stack_file_path(project_dir, args.stack).name} in {project_dir}; using the "
                  "defaults in Pulumi.yaml, credentials from the environment, and the real clouds"
                  f"{' except --endpoint overrides' if overrides else ''}\n")
    settings = settings_from_config(config_getter(config, overrides), environ)
    if args.sets_dir:
        sets_dir = Path(args.sets_dir)
    else:
        configured = config.get(f"{PROJECT}:setsDir")
        sets_dir = _under(project_dir, configured if isinstance(configured, str) and configured else DEFAULT_SETS_DIR)
    declarations = select_sets(load_sets(sets_dir), args.sets)
    check_credentials(declarations, settings, config)
    report = build_report(observe(declarations, settings, err), stack=args.stack, generated_at=utcnow())
    text = render(report, args.format, args.max_rows)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        err.write(f"report: {summary_line(report)}; wrote {args.output}\n")
    else:
        out.write(text)
        out.flush()
    return report.exit_code

