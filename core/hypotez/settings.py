"""Settings, highest precedence first: arguments, environment, ``hypotez.toml``, defaults.

The TOML file is found at the ``config_file`` argument, else ``$HYPOTEZ_CONFIG``, else
``./hypotez.toml``, else ``$HYPOTEZ_HOME/hypotez.toml``. Its top-level keys are the core
settings below; tables ``[plugins.NAME]`` hold each plugin's options::

    storage = "file:///srv/hypotez"
    chat = "my-chat-backend"
    model = "my-model"

    [plugins.my-plugin]
    model_path = "/models/my-model.bin"

Core knows only its own settings (``HYPOTEZ_*``). Each plugin reads its options with
:meth:`Settings.option` and any other environment variable it owns (its vendor's API key, say)
with :meth:`Settings.env`. Options a plugin marks secret (API keys) are read from
arguments and the environment only, never from the TOML file, so that a config file can be
shared or committed without leaking one.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs
from hypotez.errors import ConfigError, InputError, redact

T = TypeVar("T")

#: core setting -> environment variable
ENV_NAMES: dict[str, str] = {
    "home": "HYPOTEZ_HOME",
    "storage": "HYPOTEZ_STORAGE",
    "chat": "HYPOTEZ_CHAT",
    "sentiment": "HYPOTEZ_SENTIMENT",
    "vision": "HYPOTEZ_VISION",
    "trainer": "HYPOTEZ_TRAINER",
    "model": "HYPOTEZ_MODEL",
    "timeout": "HYPOTEZ_TIMEOUT",
    "max_retries": "HYPOTEZ_MAX_RETRIES",
}


def as_bool(value: Any) -> bool:
    """Parse a boolean option from TOML (a bool) or the environment (1/0, true/false, yes/no, on/off)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def default_home() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("hypotez", appauthor=False))


def _none_if_empty(value: Any) -> Any:
    return None if value == "" else value


@attrs.frozen
class Settings:
    """Everything a backend factory may need. Build with :meth:`Settings.load`."""

    # Absolute, so a relative HYPOTEZ_HOME or --home means "below the working directory now",
    # and the default storage URL (which must be absolute) can be made from it.
    home: Path = attrs.field(converter=lambda p: Path(p).expanduser().absolute())
    # A storage URL may hold a user:password@ part: never shown.
    storage: str = attrs.field(repr=lambda url: repr(redact(url)))
    chat: str | None = None
    sentiment: str | None = None
    vision: str | None = None
    trainer: str | None = None
    model: str | None = None
    timeout: float = attrs.field(default=60.0, converter=float)
    max_retries: int = attrs.field(default=3, converter=int)
    config_file: Path | None = None
    _arg_options: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, repr=False)
    _file_options: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, repr=False)
    _env: Mapping[str, str] = attrs.field(factory=dict, repr=False)

    @classmethod
    def load(
        cls,
        *,
        config_file: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        options: Mapping[str, Mapping[str, Any]] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Resolve settings. ``overrides`` are core settings, ``options`` per-plugin options."""
        if env is not None and not isinstance(env, Mapping):
            raise InputError(f"env must be a mapping of names to values, not {type(env).__name__}.")
        env = dict(os.environ if env is None else env)
        unknown = set(overrides) - set(ENV_NAMES)
        if unknown:
            raise ConfigError(
                f"Unknown setting(s) {', '.join(sorted(unknown))}: use {', '.join(ENV_NAMES)}."
            )
        _check_argument_types(config_file, options, overrides)
        path = _find_config(config_file, env, overrides.get("home"))
        file_values, file_options = _read_toml(path) if path else ({}, {})

        values: dict[str, Any] = {}
        sources: dict[str, str] = {}  # where each value came from, for error messages
        for key, env_name in ENV_NAMES.items():
            if overrides.get(key) is not None:
                values[key], sources[key] = overrides[key], f"argument {key}"
            elif _none_if_empty(env.get(env_name)) is not None:
                values[key], sources[key] = env[env_name], env_name
            elif key in file_values:
                values[key], sources[key] = file_values[key], f"{key} in {str(path)!r}"
                if key not in _NUMBERS and not isinstance(values[key], str):
                    raise ConfigError(
                        f'{sources[key]} = {values[key]!r} must be a string, e.g. {key} = "...".'
                    )
        for key, cast in _NUMBERS.items():
            if key in values:
                values[key] = _positive(values[key], cast, sources[key])
        home = Path(values.pop("home", None) or default_home()).expanduser().absolute()
        storage = values.pop("storage", None) or home.as_uri()
        return cls(
            home=home,
            storage=str(storage),
            config_file=path,
            arg_options={k: dict(v) for k, v in (options or {}).items()},
            file_options=file_options,
            env=env,
            **values,
        )

    def option(
        self,
        plugin: str,
        key: str,
        default: T | None = None,
        cast: Callable[[Any], T] | None = None,
        *,
        secret: bool = False,
    ) -> T | Any:
        """A plugin's option: argument, then ``HYPOTEZ_<PLUGIN>_<KEY>``, then the TOML table.

        A ``secret`` option (an API key, a password) is never read from the TOML file: finding
        it there is a :class:`~hypotez.ConfigError` telling the user to move it to the
        environment.
        """
        if key in self._arg_options.get(plugin, {}):
            return self._arg_options[plugin][key]
        env_name = f"HYPOTEZ_{plugin}_{key}".upper().replace("-", "_")
        raw: Any
        if _none_if_empty(self._env.get(env_name)) is not None:
            raw = self._env[env_name]
        elif key in self._file_options.get(plugin, {}):
            if secret:
                raise ConfigError(
                    f"{str(self.config_file)!r} holds the secret option {key!r} under "
                    f"[plugins.{plugin}]: remove it and set {env_name} (or the plugin's own "
                    "environment variable) instead, so the file can be shared safely."
                )
            raw = self._file_options[plugin][key]
        else:
            return default
        if cast is None:
            return raw
        try:
            return cast(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"Option {plugin}.{key} = {raw!r} is invalid ({env_name} or [plugins.{plugin}]): {exc}"
            ) from exc

    def env(self, name: str, default: str | None = None) -> str | None:
        """An environment variable as it was when the settings were loaded (empty = unset)."""
        return _none_if_empty(self._env.get(name)) or default

    def evolve(self, **changes: Any) -> Settings:
        """These settings with some core settings changed."""
        return attrs.evolve(self, **changes)

    def with_options(self, plugin: str, **values: Any) -> Settings:
        """These settings with some of ``plugin``'s options given as arguments (the highest
        precedence), e.g. ``settings.with_options("files", fsync=False)``."""
        merged = {k: dict(v) for k, v in self._arg_options.items()}
        merged.setdefault(plugin, {}).update(values)
        return attrs.evolve(self, arg_options=merged)


def _check_argument_types(
    config_file: object, options: object, overrides: Mapping[str, Any]
) -> None:
    """Arguments of the wrong type are an InputError naming them, not a TypeError later."""
    if config_file is not None and not isinstance(config_file, str | os.PathLike):
        raise InputError(f"config_file must be a path, not {type(config_file).__name__}.")
    if options is not None and (
        not isinstance(options, Mapping)
        or not all(isinstance(k, str) and isinstance(v, Mapping) for k, v in options.items())
    ):
        raise InputError(
            'options must map plugin names to their options, e.g. {"files": {"fsync": False}}.'
        )
    for key, value in overrides.items():
        if value is None or key in _NUMBERS:
            continue  # numbers are checked (and converted) where they are resolved
        allowed: tuple[type, ...] = (str, os.PathLike) if key == "home" else (str,)
        if not isinstance(value, allowed):
            what = "a path" if key == "home" else "text"
            raise InputError(f"Setting {key} must be {what}, not {type(value).__name__}.")


#: numeric core settings and their type; each must be > 0 (max_retries >= 0).
_NUMBERS: dict[str, type] = {"timeout": float, "max_retries": int}


def _positive(raw: Any, cast: type, source: str) -> Any:
    """``raw`` as a number, or a ConfigError naming where it came from (not a bare ValueError)."""
    try:
        if isinstance(raw, bool) or (cast is int and isinstance(raw, float)):
            raise ValueError
        value = cast(raw)
        if value != value or value in (float("inf"),):  # NaN, infinity
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(
            f"{source} = {raw!r} is not a valid {'whole number' if cast is int else 'number'}."
        ) from None
    if value < 0 or (cast is float and value == 0):
        raise ConfigError(
            f"{source} = {raw!r} must be {'at least 0' if cast is int else 'greater than 0'}."
        )
    return value


def _find_config(explicit: Any, env: Mapping[str, str], home: Any) -> Path | None:
    if explicit is not None:
        return _named_config(explicit, "Config file")
    if env.get("HYPOTEZ_CONFIG"):
        return _named_config(env["HYPOTEZ_CONFIG"], "HYPOTEZ_CONFIG")
    home_source = (
        "home" if home else "HYPOTEZ_HOME" if env.get("HYPOTEZ_HOME") else "the data folder"
    )
    for candidate, source in (
        (Path.cwd() / "hypotez.toml", "the working folder"),
        (
            Path(home or env.get("HYPOTEZ_HOME") or default_home()).expanduser() / "hypotez.toml",
            home_source,
        ),
    ):
        try:
            if candidate.is_file():
                return candidate
        except (OSError, ValueError) as exc:  # a name too long for the file system, a NUL
            raise ConfigError(
                f"Cannot look for a config file in {source} ({str(candidate.parent)!r}): "
                f"{_os_reason(exc)}. Choose a shorter, valid folder."
            ) from None
    return None


def _named_config(raw: Any, source: str) -> Path:
    """The config file a user named (argument or HYPOTEZ_CONFIG), checked."""
    path = Path(raw).expanduser()
    what = f"{source} {str(path)!r}" if source == "Config file" else f"{source} ({str(path)!r})"
    try:
        if path.is_dir():
            raise ConfigError(f"{what} is a folder, not a file: name the hypotez.toml in it.")
        if not path.is_file():
            raise ConfigError(
                f"{what} does not exist." if not path.exists() else f"{what} is not a regular file."
            )
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{what} cannot be used: {_os_reason(exc)}.") from None
    return path


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _read_toml(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    try:
        # utf-8-sig: a BOM (as some Windows editors save) is accepted, not "Invalid statement".
        data = tomllib.loads(path.read_bytes().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"Cannot read config file {str(path)!r}: {exc}. Fix or remove it."
        ) from exc
    plugins = data.pop("plugins", {})
    if not isinstance(plugins, dict) or not all(isinstance(v, dict) for v in plugins.values()):
        raise ConfigError(
            f"In {str(path)!r}, [plugins] must hold one table per plugin, e.g. [plugins.my-plugin]."
        )
    unknown = set(data) - set(ENV_NAMES)
    if unknown:
        raise ConfigError(
            f"Unknown key(s) {', '.join(sorted(unknown))} in {str(path)!r}. "
            f"Known: {', '.join(ENV_NAMES)}; plugin options go under [plugins.NAME]."
        )
    return data, plugins
