"""Settings precedence: arguments > environment > hypotez.toml > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypotez import ConfigError, Settings


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults(tmp_path: Path) -> None:
    s = Settings.load(env={}, home=tmp_path)
    assert s.storage == tmp_path.as_uri()
    assert (s.chat, s.sentiment, s.model) == (None, None, None)
    assert s.max_retries == 3 and s.timeout == 60


def test_precedence_args_over_env_over_file(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "hypotez.toml", 'chat = "from-file"\nsentiment = "vader"\nmodel = "m-file"\n'
    )
    env = {"HYPOTEZ_CHAT": "from-env", "HYPOTEZ_MODEL": "m-env"}
    s = Settings.load(config_file=cfg, env=env, chat="from-arg", home=tmp_path)
    assert s.chat == "from-arg"
    assert s.model == "m-env"
    assert s.sentiment == "vader"
    assert s.config_file == cfg


def test_toml_is_found_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "hypotez.toml", 'sentiment = "keywords"\n')
    assert Settings.load(env={}).sentiment == "keywords"


def test_toml_in_hypotez_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    write(home / "hypotez.toml", 'storage = "s3://bucket/p"\n')
    assert Settings.load(env={"HYPOTEZ_HOME": str(home)}).storage == "s3://bucket/p"


def test_empty_env_values_count_as_unset(tmp_path: Path) -> None:
    assert Settings.load(env={"HYPOTEZ_CHAT": "", "OPENAI_API_KEY": ""}, home=tmp_path).chat is None


def test_plugin_options_precedence(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "c.toml", "[plugins.llamacpp]\nn_threads = 4\nmodel_path = '/file.gguf'\n"
    )
    s = Settings.load(
        config_file=cfg,
        env={"HYPOTEZ_LLAMACPP_N_THREADS": "2"},
        options={"llamacpp": {"model_path": "/arg.gguf"}},
    )
    assert s.option("llamacpp", "model_path") == "/arg.gguf"
    assert s.option("llamacpp", "n_threads", cast=int) == 2
    assert s.option("llamacpp", "missing", "dflt") == "dflt"
    bad = Settings.load(config_file=cfg, env={"HYPOTEZ_LLAMACPP_N_THREADS": "two"})
    with pytest.raises(ConfigError, match="HYPOTEZ_LLAMACPP_N_THREADS"):
        bad.option("llamacpp", "n_threads", cast=int)


def test_environment_is_never_shown(tmp_path: Path) -> None:
    s = Settings.load(env={"OPENAI_API_KEY": "sk-secret-123"}, home=tmp_path)
    assert s.env("OPENAI_API_KEY") == "sk-secret-123"  # a plugin reads its own variables
    assert "sk-secret" not in repr(s) and "sk-secret" not in str(s)


def test_secret_options_in_toml_are_refused(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.toml", '[plugins.mine]\ntoken = "sk-x"\n')
    s = Settings.load(config_file=cfg, env={})
    assert s.option("mine", "token") == "sk-x"  # an ordinary option may live in the file
    with pytest.raises(ConfigError, match=r"secret option 'token'.*HYPOTEZ_MINE_TOKEN") as err:
        s.option("mine", "token", secret=True)
    assert "sk-x" not in str(err.value)
    from_env = Settings.load(config_file=cfg, env={"HYPOTEZ_MINE_TOKEN": "sk-env"})
    assert from_env.option("mine", "token", secret=True) == "sk-env"
    # Core has no API-key setting of its own: a top-level one is an unknown key.
    top = write(tmp_path / "d.toml", 'openai_api_key = "sk-x"\n')
    with pytest.raises(ConfigError, match="Unknown key"):
        Settings.load(config_file=top, env={})


def test_unknown_keys_and_broken_toml_are_reported_with_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Unknown key\(s\) chatt"):
        Settings.load(config_file=write(tmp_path / "a.toml", 'chatt = "x"\n'), env={})
    with pytest.raises(ConfigError, match=r"b\.toml"):
        Settings.load(config_file=write(tmp_path / "b.toml", "chat = \n"), env={})
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load(config_file=tmp_path / "missing.toml", env={})
    with pytest.raises(ConfigError, match="HYPOTEZ_CONFIG"):
        Settings.load(env={"HYPOTEZ_CONFIG": str(tmp_path / "nope.toml")})
    with pytest.raises(ConfigError, match="Unknown setting"):
        Settings.load(env={}, colour="blue")


@pytest.mark.parametrize(
    ("env", "where"),
    [
        ({"HYPOTEZ_TIMEOUT": "abc"}, "HYPOTEZ_TIMEOUT"),
        ({"HYPOTEZ_TIMEOUT": "0"}, "HYPOTEZ_TIMEOUT"),
        ({"HYPOTEZ_TIMEOUT": "nan"}, "HYPOTEZ_TIMEOUT"),
        ({"HYPOTEZ_MAX_RETRIES": "2.5"}, "HYPOTEZ_MAX_RETRIES"),
        ({"HYPOTEZ_MAX_RETRIES": "-1"}, "HYPOTEZ_MAX_RETRIES"),
    ],
)
def test_bad_numbers_from_the_environment_name_the_variable(
    tmp_path: Path, env: dict[str, str], where: str
) -> None:
    with pytest.raises(ConfigError, match=where):
        Settings.load(env=env, home=tmp_path)


def test_bad_numbers_from_the_file_or_arguments_name_their_source(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    cfg = write(tmp_path / "etc" / "hypotez.toml", 'timeout = "soon"\n')
    with pytest.raises(ConfigError, match=r"timeout in .*hypotez\.toml.*'soon'"):
        Settings.load(config_file=cfg, env={}, home=tmp_path)
    with pytest.raises(ConfigError, match="argument max_retries"):
        Settings.load(env={}, home=tmp_path, max_retries="many")
    ok = Settings.load(env={"HYPOTEZ_TIMEOUT": "2.5", "HYPOTEZ_MAX_RETRIES": "0"}, home=tmp_path)
    assert (ok.timeout, ok.max_retries) == (2.5, 0)


def test_a_bad_number_is_a_one_line_error_in_the_cli_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hypotez.cli import main

    monkeypatch.setenv("HYPOTEZ_TIMEOUT", "abc")
    with pytest.raises(SystemExit) as info:
        main(["ask", "--chat", "echo", "hello"])
    err = capsys.readouterr().err
    assert info.value.code == 1 and "HYPOTEZ_TIMEOUT = 'abc'" in err and "Traceback" not in err


def test_a_relative_home_is_taken_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings.load(env={"HYPOTEZ_HOME": "data"})
    assert s.home == tmp_path / "data"
    assert s.storage == (tmp_path / "data").as_uri()
    assert Settings.load(env={}, home="other").storage == (tmp_path / "other").as_uri()


def test_a_non_string_name_in_the_file_is_refused_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    cfg = write(tmp_path / "etc" / "hypotez.toml", "chat = 5\n")
    with pytest.raises(ConfigError, match=r"chat in .*hypotez\.toml.* = 5 must be a string"):
        Settings.load(config_file=cfg, env={}, home=tmp_path)
