"""The stack's config as the report reads it without the Pulumi CLI: ``Pulumi.yaml`` defaults under
``Pulumi.<stack>.yaml``, ``--endpoint`` overrides, and a getter shaped like the provider's config.

Encrypted values (``{secure: ...}``) cannot be decrypted without the CLI: they count as absent,
and a credential pair with one encrypted key is read from the environment as a whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

import yaml

from ..engine.settings import PROJECT, parse_endpoint
from ..model.clouds import cloud_keys, credential_families, find
from ..model.connection import ConfigError


# -- stack config -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class StackConfig:
    """A stack's config as the program would see it, minus what only the Pulumi CLI can decrypt."""

    values: Mapping[str, Any]          # namespaced key -> value, Pulumi.yaml defaults applied
    project_dir: Path
    stack_file: Optional[Path]         # None: no stack file, defaults only
    encrypted: tuple[str, ...] = ()    # keys treated as absent because they are {secure: ...}

    def get(self, key: str) -> Any:
        return self.values.get(key)


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', None) or exc}); fix the syntax") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path} ({exc})") from None


def _namespaced(key: Any, project: str) -> str:
    key = str(key)
    return key if ":" in key else f"{project}:{key}"


def stack_file_path(project_dir: Path, stack: str) -> Path:
    """``Pulumi.<stack>.yaml`` (or ``.yml``); a fully qualified ``org/project/stack`` uses its last part."""
    name = stack.rsplit("/", 1)[-1]
    for suffix in (".yaml", ".yml"):
        candidate = project_dir / f"Pulumi.{name}{suffix}"
        if candidate.is_file():
            return candidate
    return project_dir / f"Pulumi.{name}.yaml"


def load_stack_config(project_dir: Path, stack: str, *, require_project: bool = True) -> StackConfig:
    """Defaults (and values) declared in Pulumi.yaml's ``config:``, overlaid with ``Pulumi.<stack>.yaml``.

    ``require_project=False`` (the ``cdn-prefetch`` command, which needs no Pulumi project): a folder
    without Pulumi.yaml has no declared defaults, and the code's own defaults apply."""
    project_file = project_dir / "Pulumi.yaml"
    if not project_file.is_file() and require_project:
        raise ConfigError(f"no Pulumi.yaml in {project_dir}; run the report from the project root (or pass --cwd)")
    project_doc = (_read_yaml(project_file) if project_file.is_file() else None) or {}
    if not isinstance(project_doc, dict):
        raise ConfigError(f"{project_file}: expected a mapping with name, runtime and config")
    project = str(project_doc.get("name") or PROJECT)
    values: dict[str, Any] = {}
    for key, spec in (project_doc.get("config") or {}).items():
        if isinstance(spec, dict):
            for field_name in ("value", "default"):
                if field_name in spec:
                    values[_namespaced(key, project)] = spec[field_name]
                    break
        elif spec is not None:
            values[_namespaced(key, project)] = spec  # short form: `key: value`
    path = stack_file_path(project_dir, stack)
    encrypted: list[str] = []
    stack_file: Optional[Path] = None
    if path.is_file():
        stack_file = path
        doc = _read_yaml(path) or {}
        config = doc.get("config") if isinstance(doc, dict) else None
        if config is not None and not isinstance(config, dict):
            raise ConfigError(f"{path}: 'config' must be a mapping of namespaced keys (cdn-prefetch:setsDir: ...)")
        for key, value in (config or {}).items():
            name = _namespaced(key, project)
            cleaned = _strip_secure(value, name, encrypted)
            if cleaned is _ABSENT:
                values.pop(name, None)
            else:
                values[name] = cleaned
    for group in credential_groups():
        if any(key in encrypted for key in group):
            for key in group:  # one source per credential pair: the environment
                values.pop(key, None)
    return StackConfig(values, project_dir, stack_file, tuple(encrypted))


_ABSENT = object()


def credential_groups() -> list[tuple[str, ...]]:
    """Credential keys that only make sense together: if one is encrypted, the whole group is read from the env."""
    return [family.config_keys + ((family.token_config_key,) if family.token_config_key else ())
            for family in credential_families()]


def _strip_secure(value: Any, name: str, encrypted: list[str]) -> Any:
    """Drop ``{secure: ...}`` values (anywhere in a structured value), remembering their keys."""
    if _is_secure(value):
        encrypted.append(name)
        return _ABSENT
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            cleaned = _strip_secure(item, f"{name}.{key}", encrypted)
            if cleaned is not _ABSENT:
                out[key] = cleaned
        return out
    if isinstance(value, list):
        return [item for item in (_strip_secure(v, f"{name}[{i}]", encrypted) for i, v in enumerate(value))
                if item is not _ABSENT]
    return value


def parse_endpoint_overrides(items: Iterable[str]) -> dict[str, str]:
    """``--endpoint CLOUD=VALUE`` flags -> {cloud: value}; raises ConfigError naming the bad flag."""
    overrides: dict[str, str] = {}
    for item in items:
        cloud, sep, value = item.partition("=")
        cloud, value = cloud.strip(), value.strip()
        if not sep or find(cloud) is None:
            example = cloud_keys()[0]
            raise ConfigError(f"--endpoint {item!r}: write CLOUD=VALUE with CLOUD one of {', '.join(cloud_keys())}, "
                              f"e.g. --endpoint {example}=http://127.0.0.1:8787 or --endpoint {example}=sandbox")
        try:
            parse_endpoint(cloud, value)
        except ConfigError:
            raise ConfigError(f"--endpoint {cloud}={value!r} is not an endpoint; use 'sandbox' or a URL such as "
                              "http://127.0.0.1:8787 (scheme, host and port only)") from None
        overrides[cloud] = value
    return overrides


def config_getter(config: StackConfig, endpoint_overrides: Mapping[str, str]) -> Callable[[str], Optional[str]]:
    """``get(key)`` for settings_from_config: values as Pulumi's Config.get returns them (text / JSON text)."""

    def get(key: str) -> Optional[str]:
        value = config.get(key)
        if key == f"{PROJECT}:endpoints" and endpoint_overrides:
            table = value
            if isinstance(table, str):
                try:
                    table = json.loads(table)
                except json.JSONDecodeError:
                    pass
            if table in (None, ""):
                table = {}
            if isinstance(table, dict):
                value = {**table, **endpoint_overrides}
        if key == f"{PROJECT}:sandboxDb" and isinstance(value, str) and value:
            value = str(_under(config.project_dir, value))
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        return str(value)

    return get


def _under(base: Path, value: str) -> Path:
    """Paths in stack config are relative to the project folder (the program's working directory)."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path
