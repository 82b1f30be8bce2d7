"""`python -m sandbox`: serve the emulator, or steer one (running or not) through its db file."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Sequence

from . import accounts_cli
from .faults import KINDS
from .keys import (
    OTHER_SECRET_ID,
    OTHER_SECRET_KEY,
    OTHER_UCLOUD_PRIVATE_KEY,
    OTHER_UCLOUD_PUBLIC_KEY,
    SANDBOX_SECRET_ID,
    SANDBOX_SECRET_KEY,
    SANDBOX_UCLOUD_PRIVATE_KEY,
    SANDBOX_UCLOUD_PUBLIC_KEY,
)
from .server import TENCENT_SERVICES, Sandbox
from .steering import KINDS as TASK_KINDS
from .steering import OUTCOMES, SERVICES, SETTINGS
from .store import EdgeCopy, SandboxStore, TaskSummary

DEFAULT_DB = os.path.join(".sandbox", "sandbox.db")
DEFAULT_PORT = 8787
LOG_PARAMS_WIDTH = 200


def _parser() -> argparse.ArgumentParser:
    # --db is accepted before or after the subcommand; SUPPRESS keeps the sub-level from
    # overwriting a top-level value with its default.
    db_parent = argparse.ArgumentParser(add_help=False)
    db_parent.add_argument("--db", default=argparse.SUPPRESS, help=f"sandbox database (default {DEFAULT_DB})")

    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--db", default=DEFAULT_DB, help=f"sandbox database (default {DEFAULT_DB})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", parents=[db_parent], help="serve the emulated APIs until Ctrl-C")
    serve.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any free port)")
    serve.add_argument("--progress-seconds", type=float, metavar="S", help="how long new tasks stay processing")
    serve.add_argument("--cdn-max-limit", type=int, metavar="N",
                       help="largest Limit Tencent CDN DescribePushTasks serves (setting cdn_history_max_limit, "
                            "default 1000; the real maximum is not documented)")
    serve.add_argument("--cdn-over-limit", choices=SETTINGS["cdn_history_over_limit"].choices,
                       help="a larger Limit is refused with InvalidParameter.CdnParamError (default) or capped "
                            "silently (setting cdn_history_over_limit)")

    rule = sub.add_parser("rule", help="steer task outcomes by URL pattern")
    rule_sub = rule.add_subparsers(dest="rule_command", required=True, metavar="ACTION")
    add = rule_sub.add_parser("add", parents=[db_parent], help="add a rule (the latest matching rule wins)")
    add.add_argument("pattern", help="fnmatch glob over the target URL, e.g. '*/broken/*'")
    add.add_argument("outcome", choices=OUTCOMES)
    add.add_argument("--fail-type", help="FailType to report (default depends on the outcome)")
    add.add_argument("--message", help="FailMessage (or FailedList Reason for 'rejected')")
    add.add_argument("--delay", type=float, metavar="S", help="seconds the task stays processing")
    add.add_argument("--service", choices=SERVICES, help="only on this cloud (default: every cloud)")
    add.add_argument("--kind", choices=[*TASK_KINDS, "any"], default="prefetch",
                     help="the tasks it steers: prefetch (default), purge, or any")
    rule_sub.add_parser("list", parents=[db_parent], help="list rules in order")
    rule_sub.add_parser("clear", parents=[db_parent], help="remove every rule (existing tasks keep their outcome)")

    fault = sub.add_parser("fault", help="inject failures: throttling, 5xx, resets, slowness, bad answers")
    fault_sub = fault.add_subparsers(dest="fault_command", required=True, metavar="ACTION")
    fadd = fault_sub.add_parser(
        "add", parents=[db_parent], help="add a fault (evaluated in order; the first that fires wins)",
        description="Add a fault. Kinds: throttle (the cloud's throttling error), http_5xx (gateway error page), "
                    "slow (answer after --delay), reset (TCP RST, no answer), malformed_json, missing_field, "
                    "null_field, wrong_content_type (application/json; charset=utf-8), clock_skew (the cloud's "
                    "clock is --delay seconds ahead, negative: behind; Tencent refuses the signatures beyond 300 s "
                    "with AuthFailure.SignatureExpire, UCloud answers and reads every time on that clock: e.g. "
                    "`clock_skew --service ucloud --delay 1800` is a UCloud 30 minutes ahead).",
    )
    fadd.add_argument("kind", choices=KINDS)
    fadd.add_argument("--service", choices=SERVICES, help="only on this cloud (default: every cloud)")
    fadd.add_argument("--action", help="only this action, e.g. CreatePrefetchTask (default: every action)")
    fadd.add_argument("--probability", type=float, default=1.0, metavar="P", help="chance to fire, 0..1 (default 1)")
    fadd.add_argument("--count", type=int, metavar="N", help="fire at most N times (default: no limit)")
    fadd.add_argument("--executed", action="store_true",
                      help="http_5xx/slow/reset: perform the action before failing (the ambiguous failure)")
    fadd.add_argument("--delay", type=float, metavar="S",
                      help="slow: seconds to sleep (default 35); clock_skew: the cloud clock's offset, + ahead, "
                           "- behind (default 600)")
    fadd.add_argument("--status", type=int, metavar="CODE", help="http_5xx: the status (default 502)")
    fadd.add_argument("--field", metavar="PATH",
                      help="missing_field/null_field: e.g. Response.Tasks[].CreateTime (default: one per action)")
    fadd.add_argument("--seed", type=int, metavar="N", help="seed of the fault's draws (default: random)")
    fault_sub.add_parser("list", parents=[db_parent], help="list faults in evaluation order, with counters")
    fault_sub.add_parser("clear", parents=[db_parent], help="remove every fault")
    chaos = fault_sub.add_parser(
        "chaos", parents=[db_parent], help="add everyday failures on every service (shares of all requests)",
    )
    chaos.add_argument("--throttle", type=float, default=0.3, metavar="X", help="share throttled (default 0.3)")
    chaos.add_argument("--server-error", type=float, default=0.05, metavar="X",
                       help="share answered HTTP 502 (default 0.05)")
    chaos.add_argument("--reset", type=float, default=0.02, metavar="X", help="share reset (default 0.02)")
    chaos.add_argument("--executed-share", type=float, default=0.5, metavar="X",
                       help="share of server errors and resets that happen after the action ran (default 0.5)")
    chaos.add_argument("--seed", type=int, default=0, metavar="N", help="seed (default 0)")

    log = sub.add_parser("log", parents=[db_parent], help="print the request log, one line per request")
    log.add_argument("--action", help="only this action, e.g. CreatePrefetchTask")
    log.add_argument("--service", choices=SERVICES, help="only this service")
    log.add_argument("--full", action="store_true", help="do not shorten parameters")
    log.add_argument("--json", action="store_true", help="one JSON object per line")


    accounts_cli.add_parser(sub, db_parent)
    edge = sub.add_parser("edge", parents=[db_parent], help="what each cloud's edge would serve for URLs")
    edge.add_argument("urls", nargs="+", metavar="URL")
    edge.add_argument("--service", choices=SERVICES, help="only this cloud's edge (default: every cloud's)")
    edge.add_argument("--json", action="store_true", help="one JSON object per URL and cloud (times in Unix seconds)")
    origin = sub.add_parser("origin", help="what the origin serves: versions per URL, S3-compatible buckets")
    origin_sub = origin.add_subparsers(dest="origin_command", required=True, metavar="ACTION")
    origin_set = origin_sub.add_parser("set", parents=[db_parent], help="from now on the origin serves VERSION")
    origin_set.add_argument("url", metavar="URL")
    origin_set.add_argument("version", metavar="VERSION", help="any label, e.g. v2 or an ETag")
    origin_show = origin_sub.add_parser("show", parents=[db_parent], help="a URL's version now and its log")
    origin_show.add_argument("url", metavar="URL")
    origin_s3 = origin_sub.add_parser("s3", parents=[db_parent], help="URLs under PREFIX take the ETags of a bucket's "
                                      "objects as versions (loopback endpoints only)")
    origin_s3.add_argument("prefix", metavar="PREFIX", help="e.g. https://static.example.com/static/")
    origin_s3.add_argument("endpoint", metavar="ENDPOINT", help="e.g. http://127.0.0.1:5000")
    origin_s3.add_argument("bucket", metavar="BUCKET")
    origin_s3.add_argument("--key-prefix", default="", help="prepended to the URL's rest to make the key")
    origin_s3.add_argument("--region", default="us-east-1")
    ttl = sub.add_parser("ttl", help="how long each edge keeps a copy, per host")
    ttl_sub = ttl.add_subparsers(dest="ttl_command", required=True, metavar="ACTION")
    ttl_set = ttl_sub.add_parser("set", parents=[db_parent], help="HOST's copies expire SECONDS after a prefetch")
    ttl_set.add_argument("host", metavar="HOST", help="e.g. static.example.com")
    ttl_set.add_argument("seconds", type=float, metavar="SECONDS")
    ttl_sub.add_parser("list", parents=[db_parent], help="hosts with a TTL of their own, and the default")

    age = sub.add_parser("age", parents=[db_parent],
                         help="pretend SECONDS have passed for existing tasks and origin versions")
    age.add_argument("seconds", type=float)
    sub.add_parser("reset", parents=[db_parent],
                   help="drop all tasks, rules, faults, quota usage, origin versions and the log")
    setting = sub.add_parser("set", parents=[db_parent], help="change a setting")
    setting.add_argument("key", choices=list(SETTINGS))
    setting.add_argument("value")
    sub.add_parser("settings", parents=[db_parent], help="show every setting")
    return parser


def _existing_store(path: str) -> SandboxStore:
    """Read-only commands refuse a missing file: a typo should not look like an empty sandbox."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no sandbox database at {path} (start one with `python -m sandbox serve --db {path}`)")
    return SandboxStore(path)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _run(args: argparse.Namespace) -> int:
    if args.command == "serve":
        sandbox = Sandbox(args.db, host=args.host, port=args.port, progress_seconds=args.progress_seconds)
        limits = {"cdn_history_max_limit": args.cdn_max_limit, "cdn_history_over_limit": args.cdn_over_limit}
        for key, value in limits.items():
            if value is not None:
                sandbox.store.set_setting(key, value)
        sandbox.start()
        services = ", ".join(f"{s.name} {s.version}" for s in TENCENT_SERVICES.values())
        print(
            f"sandbox serving {services}, ucloud ucdn at {sandbox.url}  SecretId={SANDBOX_SECRET_ID} "
            f"SecretKey={SANDBOX_SECRET_KEY}  PublicKey={SANDBOX_UCLOUD_PUBLIC_KEY} "
            f"PrivateKey={SANDBOX_UCLOUD_PRIVATE_KEY}  db={args.db}  (Ctrl-C to stop)\n"
            f"another account: SecretId={OTHER_SECRET_ID} SecretKey={OTHER_SECRET_KEY}  "
            f"PublicKey={OTHER_UCLOUD_PUBLIC_KEY} PrivateKey={OTHER_UCLOUD_PRIVATE_KEY}  "
            "(who owns what: python -m sandbox account list)\n"
            "times: Cloud CDN's StartTime/EndTime are Beijing time (UTC+8, 'YYYY-MM-DD HH:MM:SS'; a UTC window "
            "misses 8 hours of tasks); EdgeOne's and UCloud's carry their zone (RFC 3339, Unix seconds)\n"
            f"other clients: point them at {sandbox.url} over plain HTTP, e.g. tccli ... --endpoint {sandbox.url}",
            flush=True,
        )
        try:
            sandbox.serve_forever()
        except KeyboardInterrupt:
            pass
        return 0

    if args.command == "rule":
        if args.rule_command == "add":
            rule = SandboxStore(args.db).add_rule(
                args.pattern, args.outcome, fail_type=args.fail_type,
                fail_message=args.message, delay_seconds=args.delay, service=args.service,
                kind=None if args.kind == "any" else args.kind,
            )
            where = f" (on {rule.service} only)" if rule.service else ""
            print(f"rule #{rule.id}: {rule.pattern} -> {rule.outcome}{where}{_kind_note(rule.kind)}")
        elif args.rule_command == "list":
            rules = _existing_store(args.db).rules()
            if not rules:
                print("no rules: every target succeeds")
            for r in rules:
                keys = ("fail_type", "fail_message", "delay_seconds", "service")
                extras = [f"{k}={r[k]!r}" for k in keys if r[k] is not None]
                print(" ".join([f"#{r['id']}", r["pattern"], r["outcome"], *extras]) + _kind_note(r["kind"]))
        else:
            SandboxStore(args.db).clear_rules()
            print("rules cleared")
        return 0

    if args.command == "fault":
        return _fault(args)

    if args.command in ("edge", "origin", "ttl"):
        return _edge(args)

    if args.command in ("account", "ucloud-domain"):
        listing = (args.command == "account" and args.account_command == "list") or \
            (args.command == "ucloud-domain" and args.domain_command == "list")
        return accounts_cli.run(args, _existing_store(args.db) if listing else SandboxStore(args.db))


    if args.command == "log":
        for entry in _existing_store(args.db).requests(action=args.action, service=args.service):
            if args.json:
                print(json.dumps(entry, ensure_ascii=False))
                continue
            params = json.dumps(entry["params"], ensure_ascii=False)
            if not args.full and len(params) > LOG_PARAMS_WIDTH:
                params = params[: LOG_PARAMS_WIDTH - 1] + "…"
            outcome = entry["error_code"] or ("OK" if entry["handled"] else "-")
            if entry["fault"]:
                outcome += f" fault={entry['fault']}#{entry['fault_id']}"
            print(
                f"{_when(entry['time'])} {entry['service'] or '-'} {entry['action'] or '-'} "
                f"{outcome} {entry['request_id']} {params}"
            )
        return 0

    if args.command == "age":
        SandboxStore(args.db).age(args.seconds)
        print(f"aged existing tasks and origin versions by {args.seconds:g} s")
    elif args.command == "reset":
        SandboxStore(args.db).reset()
        print("sandbox reset: tasks, rules, faults, quota usage, origin versions and log dropped "
              "(settings, UCloud domains, owners, TTLs and S3 origins kept)")
    elif args.command == "set":
        store = SandboxStore(args.db)
        store.set_setting(args.key, args.value)
        print(f"{args.key} = {store.get_setting(args.key)}")
    elif args.command == "settings":
        for key, value in _existing_store(args.db).settings().items():
            print(f"{key} = {value}")
    return 0


def _kind_note(kind: str | None) -> str:
    """How a rule's kind is shown: nothing for the default (prefetch)."""
    return "" if kind == "prefetch" else f" [{kind or 'any'}]"


def _edge(args: argparse.Namespace) -> int:
    """The edge, origin and ttl commands."""
    if args.command == "ttl":
        if args.ttl_command == "set":
            SandboxStore(args.db).set_cache_ttl(args.host, args.seconds)
            print(f"ttl {args.host.strip().lower()} = {args.seconds:g} s")
        else:
            store = _existing_store(args.db)
            for host, seconds in store.cache_ttls().items():
                print(f"{host} {seconds:g} s")
            print(f"* {store.get_setting('edge_ttl_seconds'):g} s (edge_ttl_seconds: every other host)")
        return 0
    if args.command == "origin" and args.origin_command == "set":
        SandboxStore(args.db).set_origin_version(args.url, args.version)
        print(f"origin {args.url} = {args.version.strip()} from now on")
        return 0
    if args.command == "origin" and args.origin_command == "s3":
        mapped = SandboxStore(args.db).add_s3_origin(args.prefix, args.endpoint, args.bucket, args.key_prefix,
                                                     args.region)
        print(f"origin {mapped.prefix}* = ETags of s3://{mapped.bucket}/{mapped.key_prefix}* at {mapped.endpoint}")
        return 0
    urls = args.urls if args.command == "edge" else [args.url]
    bad = [url for url in urls if not url.startswith(("http://", "https://"))]
    if bad:
        raise ValueError(f"URLs start with http:// or https://; got {bad[0]!r}")
    store = _existing_store(args.db)
    try:  # a mapped S3 origin is read live: any failure of its server is a message
        if args.command == "origin":
            print(f"{args.url} {store.origin_version(args.url)} now")
            for version, since in store.origin_history(args.url):
                print(f"  {_when(since)} {version}")
            return 0
        edges = {service: store.edges(args.urls, service) for service in ([args.service] if args.service
                                                                          else SERVICES)}
    except (ValueError, OSError):
        raise
    except Exception as exc:  # noqa: BLE001 - boto3/botocore errors of an S3 origin
        raise OSError(f"cannot read the origin: {exc}") from None
    for url in dict.fromkeys(args.urls):
        for copies in edges.values():
            print(json.dumps(_edge_json(copies[url]), ensure_ascii=False) if args.json else _edge_line(copies[url]))
    return 0


def _edge_line(copy: EdgeCopy) -> str:
    if copy.version is not None:
        held = f"serves {copy.version} (cached by {copy.cached_by}, until {_when(copy.expires_at or 0)})"
    elif copy.cached_by is not None:
        held = f"miss: serves {copy.origin} from the origin (the copy by {copy.cached_by} expired " \
               f"{_when(copy.expires_at or 0)})"
    else:
        held = f"miss: serves {copy.origin} from the origin"
    state = "current" if copy.current else "STALE"
    tasks = ", ".join(f"last {kind} {_task_words(task)}"
                      for kind, task in (("prefetch", copy.last_prefetch), ("purge", copy.last_purge)))
    return f"{copy.url} {copy.service}: {held}; origin {copy.origin}, {state}; {tasks}"


def _task_words(task: TaskSummary | None) -> str:
    return "-" if task is None else f"{task.job_id} {task.status} (finish {_when(task.finish)})"


def _edge_json(copy: EdgeCopy) -> dict[str, object]:
    return {**asdict(copy), "serves": copy.serves, "current": copy.current}


def _describe_fault(f: dict[str, object]) -> str:
    parts = [f"#{f['id']}", str(f["kind"])]
    for key in ("service", "action"):
        parts.append(f"{key}={f[key] or '*'}")
    parts.append(f"p={f['probability']:g}")
    if f["count"] is not None:
        parts.append(f"count={f['count']}")
    if f["kind"] in ("http_5xx", "slow", "reset"):
        parts.append("executed" if f["executed"] else "not-executed")
    for key in ("delay_seconds", "status", "field"):
        if f[key] is not None:
            parts.append(f"{key}={f[key]:g}" if isinstance(f[key], float) else f"{key}={f[key]}")
    parts.append(f"seed={f['seed']} fired={f['fired']}/{f['evaluated']}")
    return " ".join(parts)


def _fault(args: argparse.Namespace) -> int:
    if args.fault_command == "add":
        store = SandboxStore(args.db)
        fault_id = store.add_fault(
            args.kind, service=args.service, action=args.action, probability=args.probability, count=args.count,
            executed=args.executed, delay_seconds=args.delay, seed=args.seed, status=args.status, field=args.field,
        )
        (added,) = [f for f in store.faults() if f["id"] == fault_id]
        print(f"fault {_describe_fault(added)}")
    elif args.fault_command == "chaos":
        store = SandboxStore(args.db)
        ids = store.add_chaos(
            throttle=args.throttle, server_error=args.server_error, reset=args.reset,
            executed_share=args.executed_share, seed=args.seed,
        )
        for f in store.faults():
            if f["id"] in ids:
                print(f"fault {_describe_fault(f)}")
    elif args.fault_command == "list":
        listed = _existing_store(args.db).faults()
        if not listed:
            print("no faults: every request is answered normally")
        for f in listed:
            print(_describe_fault(f))
    else:
        SandboxStore(args.db).clear_faults()
        print("faults cleared")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileNotFoundError) as exc:  # user mistakes: a message, not a traceback
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    except OSError as exc:  # e.g. the port is taken
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
