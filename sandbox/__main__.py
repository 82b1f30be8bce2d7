"""`python -m sandbox`: serve the emulator, or steer one (running or not) through its db file."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from typing import Sequence

from .server import (
    SANDBOX_SECRET_ID,
    SANDBOX_SECRET_KEY,
    SANDBOX_UCLOUD_PRIVATE_KEY,
    SANDBOX_UCLOUD_PUBLIC_KEY,
    TENCENT_SERVICES,
    Sandbox,
)
from .store import OUTCOMES, SERVICES, SETTINGS, SandboxStore

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

    rule = sub.add_parser("rule", help="steer task outcomes by URL pattern")
    rule_sub = rule.add_subparsers(dest="rule_command", required=True, metavar="ACTION")
    add = rule_sub.add_parser("add", parents=[db_parent], help="add a rule (the latest matching rule wins)")
    add.add_argument("pattern", help="fnmatch glob over the target URL, e.g. '*/broken/*'")
    add.add_argument("outcome", choices=OUTCOMES)
    add.add_argument("--fail-type", help="FailType to report (default depends on the outcome)")
    add.add_argument("--message", help="FailMessage (or FailedList Reason for 'rejected')")
    add.add_argument("--delay", type=float, metavar="S", help="seconds the task stays processing")
    add.add_argument("--service", choices=SERVICES, help="only on this cloud (default: every cloud)")
    rule_sub.add_parser("list", parents=[db_parent], help="list rules in order")
    rule_sub.add_parser("clear", parents=[db_parent], help="remove every rule (existing tasks keep their outcome)")

    log = sub.add_parser("log", parents=[db_parent], help="print the request log, one line per request")
    log.add_argument("--action", help="only this action, e.g. CreatePrefetchTask")
    log.add_argument("--service", choices=SERVICES, help="only this service")
    log.add_argument("--full", action="store_true", help="do not shorten parameters")
    log.add_argument("--json", action="store_true", help="one JSON object per line")

    domain = sub.add_parser("ucloud-domain", help="declare UCloud DomainIds (for the quota call)")
    domain_sub = domain.add_subparsers(dest="domain_command", required=True, metavar="ACTION")
    domain_add = domain_sub.add_parser("add", parents=[db_parent], help="map a DomainId to its hostname")
    domain_add.add_argument("domain_id", metavar="DOMAIN_ID", help="e.g. ucdn-abc123")
    domain_add.add_argument("host", metavar="HOST", help="e.g. static.example.com")
    domain_sub.add_parser("list", parents=[db_parent], help="list declared domains")

    age = sub.add_parser("age", parents=[db_parent], help="pretend SECONDS have passed for existing tasks")
    age.add_argument("seconds", type=float)
    sub.add_parser("reset", parents=[db_parent], help="drop all tasks, rules, quota usage and the log")
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
        sandbox.start()
        services = ", ".join(f"{s.name} {s.version}" for s in TENCENT_SERVICES.values())
        print(
            f"sandbox serving {services}, ucloud ucdn at {sandbox.url}  SecretId={SANDBOX_SECRET_ID} "
            f"SecretKey={SANDBOX_SECRET_KEY}  PublicKey={SANDBOX_UCLOUD_PUBLIC_KEY} "
            f"PrivateKey={SANDBOX_UCLOUD_PRIVATE_KEY}  db={args.db}  (Ctrl-C to stop)",
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
            )
            where = f" (on {rule.service} only)" if rule.service else ""
            print(f"rule #{rule.id}: {rule.pattern} -> {rule.outcome}{where}")
        elif args.rule_command == "list":
            rules = _existing_store(args.db).rules()
            if not rules:
                print("no rules: every target succeeds")
            for r in rules:
                keys = ("fail_type", "fail_message", "delay_seconds", "service")
                extras = [f"{k}={r[k]!r}" for k in keys if r[k] is not None]
                print(" ".join([f"#{r['id']}", r["pattern"], r["outcome"], *extras]))
        else:
            SandboxStore(args.db).clear_rules()
            print("rules cleared")
        return 0

    if args.command == "ucloud-domain":
        if args.domain_command == "add":
            SandboxStore(args.db).add_ucloud_domain(args.domain_id, args.host)
            print(f"ucloud domain {args.domain_id} -> {args.host.strip().lower()}")
        else:
            domains = _existing_store(args.db).ucloud_domains()
            if not domains:
                print("no ucloud domains: GetUcdnDomainPrefetchRefreshState answers 'domain not found'")
            for domain_id, host in domains.items():
                print(f"{domain_id} {host}")
        return 0

    if args.command == "log":
        for entry in _existing_store(args.db).requests(action=args.action, service=args.service):
            if args.json:
                print(json.dumps(entry, ensure_ascii=False))
                continue
            params = json.dumps(entry["params"], ensure_ascii=False)
            if not args.full and len(params) > LOG_PARAMS_WIDTH:
                params = params[: LOG_PARAMS_WIDTH - 1] + "…"
            print(
                f"{_when(entry['time'])} {entry['service'] or '-'} {entry['action'] or '-'} "
                f"{entry['error_code'] or 'OK'} {entry['request_id']} {params}"
            )
        return 0

    if args.command == "age":
        SandboxStore(args.db).age(args.seconds)
        print(f"aged existing tasks by {args.seconds:g} s")
    elif args.command == "reset":
        SandboxStore(args.db).reset()
        print("sandbox reset: tasks, rules, quota usage and log dropped (settings kept)")
    elif args.command == "set":
        store = SandboxStore(args.db)
        store.set_setting(args.key, args.value)
        print(f"{args.key} = {store.get_setting(args.key)}")
    elif args.command == "settings":
        for key, value in _existing_store(args.db).settings().items():
            print(f"{key} = {value}")
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
