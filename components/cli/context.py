"""What one ``cdn-prefetch`` run works with: the stack's config keys, from ``Pulumi.<stack>.yaml`` (with
Pulumi.yaml's defaults when there is one), the environment and flags, and credentials from the
environment or a credentials file, never from flags (a flag's value shows in ``ps`` and shell history).

Precedence: flags, then ``CDN_PREFETCH_*`` variables, then the stack file, then Pulumi.yaml. The keys
are the Pulumi stack config's, so one stack file serves ``pulumi up`` and ``cdn-prefetch apply``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import yaml

from ..declare.origin import CONFIG_KEY as ORIGIN_CREDENTIALS_KEY
from ..engine.settings import PROJECT, settings_from_config
from ..model.clouds import credential_families
from ..model.connection import DEFAULT_SANDBOX_DB, ConfigError, ProviderSettings
from ..model.policy import CONFIG_KEY as CONSENT_KEY
from ..model.policy import parse_consent
from ..report.stack_config import (
    StackConfig,
    _under,
    config_getter,
    credential_groups,
    load_stack_config,
    parse_endpoint_overrides,
)

DEFAULT_STACK = "dev"
DEFAULT_SETS_DIR = "prefetch-sets"
STATE_DIR = ".cdn-prefetch"

#: Environment variables that stand for flags (and stack config keys).
ENV_STACK = "CDN_PREFETCH_STACK"
ENV_SETS_DIR = "CDN_PREFETCH_SETS_DIR"
ENV_ENDPOINTS = "CDN_PREFETCH_ENDPOINTS"
ENV_SANDBOX_DB = "CDN_PREFETCH_SANDBOX_DB"
ENV_CREDENTIALS = "CDN_PREFETCH_CREDENTIALS"
ENV_CONSENT = "CDN_PREFETCH_ALLOW_LARGE_CHANGES"


@dataclass(frozen=True)
class Context:
    """Everything a plan or an apply reads before its first cloud call."""

    project_dir: Path
    stack: str
    config: StackConfig
    settings: ProviderSettings
    sets_dir: Path
    allow_large_changes: bool
    origin_credentials: Any
    state_path: Path


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """The flags every command that reads the stack's config takes."""
    parser.add_argument("--stack", help=f"stack whose Pulumi.<stack>.yaml supplies the config "
                                        f"(default: ${ENV_STACK}, else {DEFAULT_STACK})")
    parser.add_argument("--cwd", "-C", metavar="DIR", help="project folder (default: the current directory)")
    parser.add_argument("--sets-dir", metavar="DIR", help=f"folder of prefetch-set declarations (default: "
                                                          f"${ENV_SETS_DIR}, else {PROJECT}:setsDir, else "
                                                          f"{DEFAULT_SETS_DIR})")
    parser.add_argument("--endpoint", dest="endpoints", action="append", default=[], metavar="CLOUD=VALUE",
                        help=f"override {PROJECT}:endpoints for one cloud: 'sandbox' or a URL (repeatable; "
                             f"also ${ENV_ENDPOINTS}, comma-separated)")
    parser.add_argument("--sandbox-db", metavar="FILE", help=f"the embedded sandbox's SQLite file "
                                                             f"(default: ${ENV_SANDBOX_DB}, else {PROJECT}:sandboxDb)")
    parser.add_argument("--credentials", metavar="FILE",
                        help=f"YAML/JSON file of credential keys as in stack config (tencentcloud:secretId, ...; "
                             f"{ORIGIN_CREDENTIALS_KEY}); default ${ENV_CREDENTIALS}. Otherwise the environment")
    parser.add_argument("--state", metavar="FILE", help=f"local record of submitted tasks (default: "
                                                        f"{STATE_DIR}/<stack>.json in the project folder)")


def load_context(args: argparse.Namespace, env: Mapping[str, str]) -> Context:
    """The run's config from flags, environment, credentials file and stack file (ConfigError when wrong)."""
    project_dir = Path(args.cwd) if args.cwd else Path.cwd()
    stack = args.stack or env.get(ENV_STACK) or DEFAULT_STACK
    config = load_stack_config(project_dir, stack, require_project=False)
    endpoint_items = list(args.endpoints)
    if not endpoint_items and env.get(ENV_ENDPOINTS):
        endpoint_items = [item for item in env[ENV_ENDPOINTS].split(",") if item.strip()]
    overrides = parse_endpoint_overrides(endpoint_items)
    secrets = read_credentials_file(args.credentials or env.get(ENV_CREDENTIALS))
    sandbox_db = args.sandbox_db or env.get(ENV_SANDBOX_DB)
    if sandbox_db:
        sandbox_db = str(Path(sandbox_db).resolve())
    elif not config.get(f"{PROJECT}:sandboxDb"):  # no Pulumi.yaml default: the project folder's, as pulumi up's
        sandbox_db = str(project_dir.resolve() / DEFAULT_SANDBOX_DB)
    get = layered_getter(config_getter(config, overrides), secrets,
                         {f"{PROJECT}:sandboxDb": sandbox_db} if sandbox_db else {})
    settings = settings_from_config(get, env)
    sets_dir_flag = args.sets_dir or env.get(ENV_SETS_DIR)
    if sets_dir_flag:
        sets_dir = Path(sets_dir_flag)
    else:
        configured = config.get(f"{PROJECT}:setsDir")
        sets_dir = _under(project_dir, configured if isinstance(configured, str) and configured else DEFAULT_SETS_DIR)
    consent_flag = getattr(args, "allow_large_changes", False)
    try:
        consent = consent_flag or parse_consent(env.get(ENV_CONSENT) or get(CONSENT_KEY))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    state = Path(args.state) if args.state else project_dir / STATE_DIR / f"{stack.rsplit('/', 1)[-1]}.json"
    return Context(project_dir, stack, config, settings, sets_dir, consent,
                   secrets.get(ORIGIN_CREDENTIALS_KEY, config.get(ORIGIN_CREDENTIALS_KEY)), state)


def layered_getter(stack_get: Callable[[str], Optional[str]], secrets: Mapping[str, Any],
                   overrides: Mapping[str, str]) -> Callable[[str], Optional[str]]:
    """``get(key)`` as settings_from_config reads it: overrides, then the credentials file, then the stack.

    One source per credential pair: when the file holds any key of a pair, the pair is read from the file only.
    """
    from_file = {key for group in credential_groups() if any(k in secrets for k in group) for key in group}

    def get(key: str) -> Optional[str]:
        if key in overrides:
            return overrides[key]
        if key in from_file:
            value = secrets.get(key)
            return None if value is None else str(value)
        return stack_get(key)

    return get


def read_credentials_file(path: Optional[str]) -> dict[str, Any]:
    """The credentials file: a mapping of credential keys (values never quoted in any message)."""
    if not path:
        return {}
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the credentials file {file} ({type(exc).__name__})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark is not None else str(file)
        raise ConfigError(f"{where}: the credentials file is not valid YAML/JSON; fix the syntax") from None
    allowed = allowed_credential_keys()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the credentials file must be a mapping, e.g. tencentcloud:secretId: ...")
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        raise ConfigError(f"{file}: {unknown[0]!r} is not a credential key; the file may hold: {', '.join(allowed)} "
                          "(other settings belong in the stack file or flags)")
    for key, value in data.items():
        if key != ORIGIN_CREDENTIALS_KEY and not isinstance(value, str):
            raise ConfigError(f"{file}: {key} must be text")
    return dict(data)


def allowed_credential_keys() -> list[str]:
    keys = [key for family in credential_families() for key in family.config_keys
            + ((family.token_config_key,) if family.token_config_key else ())]
    return [*keys, ORIGIN_CREDENTIALS_KEY]
