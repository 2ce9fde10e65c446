"""The plugin manager: entry points, allow/deny lists, duplicate names, lazy construction."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import hypotez
import pytest
from hypotez import ConfigError, PluginError, hookimpl
from hypotez.plugins import make_plugin_manager


class Plugin:
    """A plugin object registering one sentiment analyzer with the given options."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        self.backend_name, self.kwargs, self.built = name, kwargs, 0

    @hookimpl
    def register_sentiment_analyzers(self, register: Any) -> None:
        def factory(settings: Any) -> Any:
            self.built += 1
            from hypotez.keywords import KeywordsAnalyzer

            return KeywordsAnalyzer()

        register(self.backend_name, factory, **self.kwargs)


def test_the_third_party_test_plugin_is_found_through_its_entry_point() -> None:
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group="hypotez")}
    assert "testplugin" in eps, "install tests/thirdparty/hypotez-testplugin (nox -s tests does)"
    pm = make_plugin_manager()
    assert pm.infos["testplugin"].distribution == "hypotez-testplugin"
    assert pm.infos["testplugin"].version == "1.2.3"
    assert pm.registry.get("chat", "echo").plugin == "testplugin"
    assert "shouty" in pm.registry.names("sentiment")


def test_default_plugins_load_like_third_party_ones() -> None:
    pm = make_plugin_manager()
    assert {"files", "textblob", "vader", "openai", "s3", "llamacpp", "imagenet", "e5"} <= set(
        pm.infos
    )
    assert pm.registry.get("storage", "file").plugin == "files"
    assert pm.registry.get("sentiment", "textblob").plugin == "textblob"


def test_allow_list_limits_plugins_and_empty_means_core_only() -> None:
    pm = make_plugin_manager(env={"HYPOTEZ_PLUGINS": "vader,files"})
    assert set(pm.infos) == {"hypotez", "vader", "files"}
    core_only = make_plugin_manager(env={"HYPOTEZ_PLUGINS": ""})
    assert set(core_only.infos) == {"hypotez"}
    assert core_only.registry.names("sentiment") == ["keywords"]


def test_allow_list_with_an_unknown_name_is_an_error() -> None:
    with pytest.raises(PluginError, match="nosuchplugin"):
        make_plugin_manager(env={"HYPOTEZ_PLUGINS": "vader,nosuchplugin"})


def test_block_list_removes_a_default_plugin() -> None:
    pm = make_plugin_manager(env={"HYPOTEZ_DISABLE_PLUGINS": "textblob, vader"})
    assert "textblob" not in pm.infos and "vader" not in pm.infos
    assert "textblob" not in pm.registry.names("sentiment")


def test_env_variables_reach_the_process_wide_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPOTEZ_DISABLE_PLUGINS", "testplugin")
    hypotez.reset_plugin_manager()
    assert "echo" not in hypotez.get_plugin_manager().registry.names("chat")


def test_two_plugins_registering_one_name_is_an_error_naming_both() -> None:
    pm = make_plugin_manager(entry_points=False)
    pm.add_plugin(Plugin("dup"), "first")
    pm.add_plugin(Plugin("dup"), "second")
    with pytest.raises(PluginError) as info:
        pm.registry.names("sentiment")
    message = str(info.value)
    assert (
        "'dup'" in message
        and "'first'" in message
        and "'second'" in message
        and "override=True" in message
    )


def test_clash_with_a_default_plugin_names_it() -> None:
    pm = make_plugin_manager()
    pm.add_plugin(Plugin("vader"), "impostor")
    with pytest.raises(PluginError, match=r"'vader'.*'impostor'"):
        pm.registry.names("sentiment")


def test_explicit_override_replaces_a_default_backend_whatever_the_order() -> None:
    replacement = Plugin("textblob", override=True)
    pm = make_plugin_manager()
    pm.add_plugin(replacement, "mine")
    reg = pm.registry.get("sentiment", "textblob")
    assert reg.plugin == "mine"
    pm.registry.build("sentiment", "textblob", hypotez.Settings.load(env={}))
    assert replacement.built == 1


def test_factories_run_only_for_the_selected_backend() -> None:
    a, b = Plugin("a", priority=5), Plugin("b", priority=1)
    pm = make_plugin_manager(entry_points=False)
    pm.add_plugin(a, "pa")
    pm.add_plugin(b, "pb")
    assert pm.registry.names("sentiment") == ["a", "b", "keywords"]
    assert (a.built, b.built) == (0, 0)  # registering is free
    pm.registry.build("sentiment", None, hypotez.Settings.load(env={}))
    assert (a.built, b.built) == (1, 0)  # highest priority wins


def test_unavailable_backends_are_skipped_when_choosing_a_default() -> None:
    off = Plugin("off", priority=99, available=lambda s: False)
    broken = Plugin("broken", priority=98, available=lambda s: 1 / 0)
    pm = make_plugin_manager(entry_points=False, plugins=[off, broken])
    reg = pm.registry.select("sentiment", None, hypotez.Settings.load(env={}))
    assert reg.name == "keywords"
    assert pm.registry.select("sentiment", "off", None).name == "off"  # by name it is still usable


def test_unknown_backend_name_lists_the_known_ones() -> None:
    pm = make_plugin_manager()
    with pytest.raises(PluginError, match=r"No sentiment backend named 'nope'.*keywords.*vader"):
        pm.registry.build("sentiment", "nope", hypotez.Settings.load(env={}))


def test_no_chat_backend_says_how_to_get_one() -> None:
    pm = make_plugin_manager(env={"HYPOTEZ_PLUGINS": ""})
    with pytest.raises(ConfigError, match=r"OPENAI_API_KEY.*hypotez\[local"):
        pm.registry.build("chat", None, hypotez.Settings.load(env={}))


def test_a_plugin_failing_in_its_hook_is_named() -> None:
    class Broken:
        @hookimpl
        def register_chat_backends(self, register: Any) -> None:
            raise RuntimeError("boom")

    pm = make_plugin_manager(entry_points=False)
    pm.add_plugin(Broken(), "broken-plugin")
    with pytest.raises(PluginError, match=r"'broken-plugin'.*boom"):
        pm.registry.names("chat")


def test_a_factory_failing_is_named() -> None:
    class Bad:
        @hookimpl
        def register_chat_backends(self, register: Any) -> None:
            register("bad", lambda settings: 1 / 0)

    pm = make_plugin_manager(entry_points=False, plugins=[Bad()])
    with pytest.raises(PluginError, match=r"'bad'.*failed to start.*ZeroDivisionError"):
        pm.registry.build("chat", "bad", None)


def test_bad_registrations_are_refused() -> None:
    class Bad:
        @hookimpl
        def register_chat_backends(self, register: Any) -> None:
            register("x", "not callable")

    pm = make_plugin_manager(entry_points=False, plugins=[Bad()])
    with pytest.raises(PluginError, match="non-callable"):
        pm.registry.names("chat")


def test_a_plugin_that_fails_to_import_is_named_with_the_way_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.metadata.entry_points

    def with_broken(**kwargs: Any) -> Any:
        eps = list(real(**kwargs))
        eps.append(importlib.metadata.EntryPoint("ghost", "hypotez_no_such_module", "hypotez"))
        return eps

    monkeypatch.setattr(importlib.metadata, "entry_points", with_broken)
    with pytest.raises(PluginError, match=r"'ghost'.*HYPOTEZ_DISABLE_PLUGINS=ghost"):
        make_plugin_manager()
    assert "ghost" not in make_plugin_manager(env={"HYPOTEZ_DISABLE_PLUGINS": "ghost"}).infos


def test_a_plugin_name_cannot_be_taken_twice() -> None:
    pm = make_plugin_manager(entry_points=False)
    with pytest.raises(PluginError, match="already registered"):
        pm.add_plugin(Plugin("x"), "hypotez")


def test_unknown_capability() -> None:
    with pytest.raises(PluginError, match="Unknown capability"):
        make_plugin_manager(entry_points=False).registry.names("telepathy")


def test_two_packages_providing_one_plugin_name_is_an_error_naming_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.metadata.entry_points

    def with_twin(**kwargs: Any) -> Any:
        eps = list(real(**kwargs))
        # Another package's entry point under the name of a default plugin.
        eps.append(importlib.metadata.EntryPoint("vader", "hypotez_testplugin", "hypotez"))
        return eps

    monkeypatch.setattr(importlib.metadata, "entry_points", with_twin)
    with pytest.raises(PluginError) as info:
        make_plugin_manager()
    message = str(info.value)
    assert "'vader'" in message and "hypotez_vader" in message and "hypotez_testplugin" in message
    assert "HYPOTEZ_DISABLE_PLUGINS=vader" in message
    assert "vader" not in make_plugin_manager(env={"HYPOTEZ_DISABLE_PLUGINS": "vader"}).infos


def test_allow_list_may_name_core_and_a_misspelt_block_list_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pm = make_plugin_manager(env={"HYPOTEZ_PLUGINS": "hypotez,vader"})
    assert set(pm.infos) == {"hypotez", "vader"}
    with caplog.at_level("WARNING", logger="hypotez.plugins"):
        pm = make_plugin_manager(env={"HYPOTEZ_DISABLE_PLUGINS": "textbob"})
    assert "textblob" in pm.infos  # nothing was disabled...
    assert "textbob" in caplog.text and "textblob" in caplog.text  # ...and the user is told
