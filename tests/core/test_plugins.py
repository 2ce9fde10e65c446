"""The plugin manager: entry points, allow/deny lists, duplicate names, lazy construction."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import hypotez
import pytest
from hypotez import ConfigError, Context, PluginError, hookimpl
from hypotez.plugins import make_plugin_manager


def build(pm: Any, capability: str, name: str | None, settings: Any = None) -> Any:
    """Build a backend the way sessions do: through a context on ``pm``."""
    context = Context(settings or hypotez.Settings.load(env={}), plugin_manager=pm)
    return context.get(capability, name)


class Plugin:
    """A plugin object registering one sentiment analyzer with the given options."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        self.backend_name, self.kwargs, self.built = name, kwargs, 0

    @hookimpl
    def register_sentiment_analyzers(self, register: Any) -> None:
        def factory(context: Any) -> Any:
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
    build(pm, "sentiment", "textblob")
    assert replacement.built == 1


def test_factories_run_only_for_the_selected_backend() -> None:
    a, b = Plugin("a", priority=5), Plugin("b", priority=1)
    pm = make_plugin_manager(entry_points=False)
    pm.add_plugin(a, "pa")
    pm.add_plugin(b, "pb")
    assert pm.registry.names("sentiment") == ["a", "b", "keywords"]
    assert (a.built, b.built) == (0, 0)  # registering is free
    build(pm, "sentiment", None)
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
        build(pm, "sentiment", "nope")


def test_no_chat_backend_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # The hints are the plugins' own (core names no backend): here the OpenAI plugin has no
    # key and llama-cpp-python is "not installed".
    import hypotez_llamacpp

    monkeypatch.setattr(hypotez_llamacpp, "_available", lambda settings: False)
    pm = make_plugin_manager(env={"HYPOTEZ_PLUGINS": "openai,llamacpp"})
    with pytest.raises(ConfigError, match=r"OPENAI_API_KEY.*hypotez\[local"):
        build(pm, "chat", None)
    core_only = make_plugin_manager(env={"HYPOTEZ_PLUGINS": ""})
    with pytest.raises(ConfigError, match=r"No chat backend is available.*Install a plugin"):
        build(core_only, "chat", None)


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
            register("bad", lambda context: 1 / 0)

    pm = make_plugin_manager(entry_points=False, plugins=[Bad()])
    with pytest.raises(PluginError, match=r"'bad'.*failed to start.*ZeroDivisionError"):
        build(pm, "chat", "bad")


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


def test_hooks_are_called_through_pluggy_so_wrappers_and_monitoring_see_them() -> None:
    from hypotez.registry import Register

    calls: list[str] = []

    class Renamer:
        """A wrapper plugin: it sees the hook call and registers around the others."""

        @hookimpl(wrapper=True)
        def register_sentiment_analyzers(self, register: Register) -> Any:
            calls.append("before")
            result = yield
            register("wrapped-extra", lambda ctx: None, description="added by a wrapper")
            calls.append("after")
            return result

    plain, renamer = Plugin("plain"), Renamer()
    pm = make_plugin_manager(entry_points=False, plugins=[plain, renamer])
    monitored: list[str] = []
    undo = pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: monitored.append(name), lambda *args: None
    )
    registrations = pm.registry.registrations("sentiment")
    undo()
    assert calls == ["before", "after"]
    assert "register_sentiment_analyzers" in monitored
    # Per-plugin attribution survives the single pluggy call.
    assert registrations["plain"].plugin == pm.get_name(plain)
    assert registrations["wrapped-extra"].plugin == pm.get_name(renamer)
    assert registrations["keywords"].plugin == "hypotez"


def test_each_registration_names_the_plugin_that_made_it() -> None:
    pm = make_plugin_manager(entry_points=False)
    pm.add_plugin(Plugin("one"), "first-plugin")
    pm.add_plugin(Plugin("two"), "second-plugin")  # the same hook function, another object
    regs = pm.registry.registrations("sentiment")
    assert (regs["one"].plugin, regs["two"].plugin) == ("first-plugin", "second-plugin")


def test_a_misspelled_hook_is_an_error_naming_the_plugin_and_the_hook() -> None:
    class Typo:
        @hookimpl
        def register_chat_backend(self, register: Any) -> None:  # no "s": never called
            register("lost", lambda ctx: None)

    pm = make_plugin_manager(entry_points=False)
    with pytest.raises(PluginError, match=r"'typo-plugin'.*register_chat_backend\b"):
        pm.add_plugin(Typo(), "typo-plugin")
    assert "typo-plugin" not in pm.infos  # refused, not half-loaded


def test_register_outside_the_hook_is_refused() -> None:
    kept: list[Any] = []

    class Late:
        @hookimpl
        def register_chat_backends(self, register: Any) -> None:
            kept.append(register)

    pm = make_plugin_manager(entry_points=False, plugins=[Late()])
    pm.registry.names("chat")
    with pytest.raises(PluginError):
        kept[0]("late", lambda ctx: None)


def test_builtin_commands_go_through_the_register_commands_hook() -> None:
    from hypotez.cli import build_cli

    pm = hypotez.get_plugin_manager()
    impls = {impl.plugin_name for impl in pm.hook.register_commands.get_hookimpls()}
    assert "hypotez" in impls  # core's own plugin adds ask, chat, train...
    seen: list[str] = []
    undo = pm.add_hookcall_monitoring(lambda name, impls, kw: seen.append(name), lambda *a: None)
    try:
        commands = build_cli().commands
    finally:
        undo()
    assert seen == ["register_commands"]
    assert {"ask", "chat", "dialogues", "train", "storage", "plugins"} <= set(commands)
