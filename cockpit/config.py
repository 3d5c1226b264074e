"""TOML configuration, environment profiles and secret references.

Found at ``--config PATH``, else ``$COCKPIT_CONFIG``, else ``./cockpit.toml``, else
``config.toml`` in the user config folder; with none, the defaults below hold.
Every setting is shown, commented, in ``config.example.toml``.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from cockpit import identity
from cockpit.durations import parse_duration
from cockpit.errors import CockpitError
from cockpit.files import Unreadable, read_regular_file
from cockpit.identity import Identity
from cockpit.output import MAX_STEP_BYTES, MIN_STEP_BYTES
from cockpit.signing import Signer

APP = "cockpit"
DEFAULT_ENVIRONMENT = "local"

# section -> key -> (type, default); "environments" is checked on its own.
SETTINGS: dict[str, dict[str, tuple[type | tuple[type, ...], Any]]] = {
    "cockpit": {"operator": (str, ""), "environment": (str, DEFAULT_ENVIRONMENT)},
    "journal": {"path": (str, ""), "synchronous": (str, "normal")},
    "output": {
        "window_lines": (int, 1000),
        "flush_interval": ((str, int, float), "50ms"),
        "max_step_bytes": (int, MAX_STEP_BYTES),
    },
    "engine": {"kill_grace": ((str, int, float), "5s")},
    "team": {
        "redis_url": (str, ""),
        "journal_dsn": (str, ""),
        "lock_ttl": ((str, int, float), "30s"),
        "heartbeat": ((str, int, float), "10s"),
        "channel_prefix": (str, "cockpit"),
        "allowed_signers": (str, ""),
        "signing_key": (str, ""),
    },
}
MAX_CONFIG_BYTES = 2**20  # a config file, at most (the example is 6 KB)
MAX_SECRET_BYTES = 2**20  # a secret file (file:PATH), at most
DURATIONS = ("flush_interval", "kill_grace", "lock_ttl", "heartbeat")
ENVIRONMENT_KEYS = ("confirm", "label", "description", "variables", "secrets")


class ConfigError(CockpitError):
    """The configuration can't be read or has problems; the message names each one."""


def read_reference(ref: str) -> tuple[str | None, str]:
    """The value a secret reference (``env:VARIABLE`` or ``file:PATH``) points at, and
    where it was looked for; None when it is not there."""
    scheme, _, target = ref.partition(":")
    if scheme == "env":
        return os.environ.get(target), f"${target}"
    try:
        text = read_regular_file(Path(target).expanduser(), MAX_SECRET_BYTES, "a secret")
        return text.decode("utf-8").rstrip("\n"), target
    except Unreadable as exc:
        return None, f"{target} ({exc})"
    except UnicodeDecodeError:
        return None, f"{target} (not UTF-8 text)"


@dataclass(frozen=True)
class Environment:
    name: str
    confirm: bool = False
    label: str = ""
    description: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)

    def secret(self, name: str) -> tuple[str | None, str]:
        """The value of secret ``name`` and where it was looked for."""
        ref = self.secrets.get(name)
        if ref is None:
            return os.environ.get(name), f"${name}"
        value, where = read_reference(ref)
        if ref.startswith("env:"):
            where += f" (profile '{self.name}')"
        return value, where


@dataclass(frozen=True)
class Team:
    """Team mode (``[team]``): one run per environment, live watch and approvals, over
    Redis. ``redis_url`` is a reference (``env:VAR`` or ``file:PATH``): it may hold a
    password."""

    redis_url: str
    lock_ttl: float = 30.0
    heartbeat: float = 10.0
    channel_prefix: str = "cockpit"

    def url(self) -> str:
        value, where = read_reference(self.redis_url)
        if not value:
            raise ConfigError(f"[team] redis_url: nothing in {where}")
        return value


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    operator: str = ""
    environment: str = DEFAULT_ENVIRONMENT
    journal_path: Path = field(
        default_factory=lambda: Path(platformdirs.user_data_dir(APP)) / "journal.sqlite3"
    )
    synchronous: str = "normal"
    window_lines: int = 1000
    flush_interval: float = 0.05
    max_step_bytes: int = MAX_STEP_BYTES
    """The cap of one step's output file: its head and tail are kept (``OutputSink``)."""
    kill_grace: float = 5.0
    environments: Mapping[str, Environment] = field(default_factory=dict)
    team: Team | None = None
    """Team mode, when ``[team]`` sets a ``redis_url``."""
    journal_dsn: str = ""
    """``[team] journal_dsn``: a reference to the DSN of the journal in PostgreSQL; empty,
    the journal is SQLite at ``journal_path``."""
    allowed_signers: Path | None = None
    """``[team] allowed_signers``: OpenSSH's allowed_signers file; set, signing is on
    (``cockpit.signing``)."""
    signing_key: str = ""
    """``[team] signing_key``: the key file to sign with; empty, the agent's first key."""

    def signer(self) -> Signer | None:
        """Who signs, when signing is on."""
        return Signer(self.signing_key) if self.allowed_signers else None

    def journal_url(self) -> str:
        value, where = read_reference(self.journal_dsn)
        if not value:
            raise ConfigError(f"[team] journal_dsn: nothing in {where}")
        return value

    def profile(self, name: str | None) -> Environment:
        """The named environment (``None``: the default one)."""
        name = name or self.environment
        if name in self.environments:
            return self.environments[name]
        if name == DEFAULT_ENVIRONMENT or not self.environments:
            return Environment(name=name)
        close = difflib.get_close_matches(name, list(self.environments), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        where = self.path or "the configuration"
        raise ConfigError(
            f"unknown environment '{name}'{hint}; {where} defines: {', '.join(self.environments)}"
        )

    @property
    def identity(self) -> Identity:
        """Who runs this command: the OS account and host, with the display name from
        ``[cockpit] operator`` or ``$COCKPIT_OPERATOR`` beside it."""
        return identity.current(self.operator or os.environ.get("COCKPIT_OPERATOR", ""))

    @property
    def operator_name(self) -> str:
        """The operator as recorded and shown: the account, and the display name beside."""
        return self.identity.label


def find_config(explicit: str | Path | None = None) -> Path | None:
    if explicit:
        return Path(explicit)
    if os.environ.get("COCKPIT_CONFIG"):
        return Path(os.environ["COCKPIT_CONFIG"])
    for candidate in (
        Path("cockpit.toml"),
        Path(platformdirs.user_config_dir(APP)) / "config.toml",
    ):
        if candidate.is_file():
            return candidate
    return None


def load_config(explicit: str | Path | None = None) -> Config:
    path = find_config(explicit)
    if path is None:
        return Config()
    try:
        data = tomllib.loads(
            read_regular_file(path, MAX_CONFIG_BYTES, "a config file").decode("utf-8")
        )
    except Unreadable as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax: {exc}") from None
    problems: list[str] = []
    values = _check_settings(data, problems)
    environments = {
        name: _environment(name, table, problems)
        for name, table in _table(data, "environments", problems).items()
    }
    if problems:
        raise ConfigError("\n".join(f"{path}: {problem}" for problem in problems))
    settings = values.copy()
    journal = settings.pop("journal.path")
    return Config(
        path=path,
        operator=settings["cockpit.operator"],
        environment=settings["cockpit.environment"],
        journal_path=Path(journal).expanduser() if journal else Config().journal_path,
        synchronous=settings["journal.synchronous"],
        window_lines=settings["output.window_lines"],
        flush_interval=settings["output.flush_interval"],
        max_step_bytes=settings["output.max_step_bytes"],
        kill_grace=settings["engine.kill_grace"],
        environments=environments,
        team=Team(
            settings["team.redis_url"],
            settings["team.lock_ttl"],
            settings["team.heartbeat"],
            settings["team.channel_prefix"],
        )
        if settings["team.redis_url"]
        else None,
        journal_dsn=settings["team.journal_dsn"],
        allowed_signers=Path(settings["team.allowed_signers"]).expanduser()
        if settings["team.allowed_signers"]
        else None,
        signing_key=settings["team.signing_key"],
    )


def _table(data: Mapping[str, Any], key: str, problems: list[str]) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        problems.append(f"[{key}]: expected a table")
        return {}
    return value


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_settings(data: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for section in data:
        if section not in SETTINGS and section != "environments":
            problems.append(
                f"unknown section [{section}]{_did_you_mean(section, [*SETTINGS, 'environments'])}"
            )
    for section, keys in SETTINGS.items():
        table = _table(data, section, problems)
        for key in table:
            if key not in keys:
                problems.append(f"[{section}] unknown key '{key}'{_did_you_mean(key, keys)}")
        for key, (kind, default) in keys.items():
            values[f"{section}.{key}"] = _setting(
                f"[{section}] {key}",
                table.get(key, default),
                kind,
                default,
                key in DURATIONS,
                problems,
            )
    _check_values(values, problems)
    return values


def _setting(
    where: str,
    value: Any,
    kind: type | tuple[type, ...],
    default: Any,
    duration: bool,
    problems: list[str],
) -> Any:
    """One setting of the expected type (a duration parsed), or its default and a problem."""
    if not isinstance(value, kind) or isinstance(value, bool):
        problems.append(f"{where}: expected {_type_name(kind)}, got {value!r}")
        value = default
    if duration:
        try:
            value = parse_duration(value)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            value = parse_duration(default)
    return value


def _check_values(values: dict[str, Any], problems: list[str]) -> None:
    """The checks across or within settings once each has its type; a team reference
    that is not ``env:``/``file:`` is dropped."""
    if values["journal.synchronous"] not in ("normal", "full"):
        problems.append(
            "[journal] synchronous: expected 'normal' or 'full', got "
            f"{values['journal.synchronous']!r}"
        )
    if values["output.window_lines"] < 10:
        problems.append("[output] window_lines: expected at least 10")
    if values["output.max_step_bytes"] < MIN_STEP_BYTES:
        problems.append(f"[output] max_step_bytes: expected at least {MIN_STEP_BYTES} (bytes)")
    for key in ("redis_url", "journal_dsn"):
        ref = values[f"team.{key}"]
        if ref and ref.partition(":")[0] not in ("env", "file"):
            problems.append(
                f'[team] {key}: expected "env:VARIABLE" or "file:PATH" (it '
                "may hold a password, which never goes in this file)"
            )
            values[f"team.{key}"] = ""
    if values["team.heartbeat"] * 2 > values["team.lock_ttl"]:
        problems.append(
            "[team] heartbeat: expected at most half of lock_ttl, so a live "
            "holder renews the lock before it expires"
        )


def _type_name(kind: type | tuple[type, ...]) -> str:
    if kind is str:
        return "a string"
    if kind is int:
        return "a whole number"
    return "a duration such as 50ms or 5s"


def _environment(name: str, table: Any, problems: list[str]) -> Environment:
    where = f"[environments.{name}]"
    if not isinstance(table, dict):
        problems.append(f"{where}: expected a table")
        return Environment(name=name)
    for key in table:
        if key not in ENVIRONMENT_KEYS:
            problems.append(f"{where} unknown key '{key}'{_did_you_mean(key, ENVIRONMENT_KEYS)}")
    confirm = table.get("confirm", False)
    if not isinstance(confirm, bool):
        problems.append(f"{where} confirm: expected true or false")
        confirm = True  # when in doubt, ask
    variables = {}
    for key, value in _table(table, "variables", problems).items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            variables[key] = str(value)
        else:
            problems.append(f"{where} variables.{key}: expected a string or number")
    secrets = {}
    for key, ref in _table(table, "secrets", problems).items():
        if not isinstance(ref, str) or ref.partition(":")[0] not in ("env", "file"):
            problems.append(
                f'{where} secrets.{key}: expected "env:VARIABLE" or '
                '"file:PATH" (secret values never go in this file)'
            )
        else:
            secrets[key] = ref
    return Environment(
        name=name,
        confirm=confirm,
        label=str(table.get("label", "")),
        description=str(table.get("description", "")),
        variables=variables,
        secrets=secrets,
    )
