"""Fuzzing what turns untrusted text into paths and keys (issue 11): ``validate_id``, the file
storage's URLs and operations, and the S3 storage's URL, endpoint and key parsers.

Whatever the input, the answer is a value that cannot leave its folder or prefix, or an
``InputError``/``ConfigError`` (or ``DialogueNotFoundError`` for a valid but unknown id):
nothing else escapes, and nothing is written outside the storage."""

from __future__ import annotations

import contextlib
import os
import posixpath
from pathlib import Path
from typing import Any

import pytest
from hypotez import (
    ConfigError,
    DialogueInfo,
    DialogueNotFoundError,
    InputError,
    Settings,
    Turn,
    validate_id,
)
from hypotez_files.storage import FileStorage
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
#: Text an attacker might try: path tricks, separators, NUL, any code point (surrogates too).
tricky = st.sampled_from(["..", ".", "/", "\\", "\x00", "%2e%2e", "%2f", "~", " ", "\n", "a", "Z9"])
any_text = st.text(st.characters(codec=None), max_size=40) | st.lists(tricky, max_size=8).map(
    "".join
)
ids = any_text | st.text("abz09._-/", max_size=135) | st.none() | st.integers() | st.binary()


def inside(folder: str, name: str) -> bool:
    return posixpath.normpath(posixpath.join(folder, name)).startswith(folder + "/")


@FUZZ
@given(ids)
@example("x" * 128)
@example("x" * 129)
@example("a..b")
@example("1")
def test_validate_id_accepts_only_names_that_stay_in_their_folder(value: Any) -> None:
    try:
        accepted = validate_id(value)
    except InputError as exc:
        assert "Invalid dialogue id" in str(exc)
        return
    assert accepted == value and isinstance(value, str) and value.isascii()
    assert 1 <= len(value) <= 128 and not value.startswith(".") and ".." not in value
    assert not set(value) & set("/\\\x00 \n")
    for suffix in (".jsonl", ".jsonl.torn", ".json", ".lock"):
        assert inside("/store/dialogues", value + suffix)
    from hypotez_s3 import layout

    for key in (
        layout.info_key(value),
        layout.turn_key(value, 7),
        layout.segment_key(value, 0, 9),
        layout.record_key(value, value),
    ):
        assert "//" not in key and "/../" not in key and not key.startswith("/")
        assert layout.dialogue_dir(value) in key or key.startswith(layout.records_dir(value))


@FUZZ
@given(ids)
def test_the_file_storage_never_leaves_its_folder_whatever_the_id(
    tmp_path: Path, value: Any
) -> None:
    root = tmp_path / "fuzz" / "store"
    store = FileStorage(root)
    if not store.dialogue_exists("known"):
        store.create_dialogue(DialogueInfo("known"))
    outside_before = sorted(os.listdir(tmp_path))
    calls = [
        lambda: store.load_dialogue(value),
        lambda: store.append_turns(value, [Turn("user", "x")]),
        lambda: store.delete_dialogue(value),
        lambda: store.dialogue_exists(value),
        lambda: store.get_record("jobs", value),
        lambda: store.get_record(value, "known"),
        lambda: store.list_records(value),
        lambda: store.list_record_ids(value),
        lambda: store.delete_record(value, "known"),
    ]
    for call in calls:  # only these two errors may come out
        with contextlib.suppress(InputError, DialogueNotFoundError):
            call()
    assert sorted(os.listdir(tmp_path)) == outside_before
    assert sorted(os.listdir(tmp_path / "fuzz")) == ["store"]


@FUZZ
@given(
    any_text
    | st.builds(lambda s: f"file://{s}", any_text)
    | st.builds(lambda s: f"file:///tmp/{s}", any_text)
)
@example("file://[broken/x")
@example("/tmp/with\x00nul")
@example("file:///tmp/%00")
def test_file_storage_urls_give_a_storage_or_an_input_error(url: str) -> None:
    try:
        store = FileStorage.from_url(url)
    except InputError as exc:
        assert str(exc)
        return
    assert store.root.is_absolute()
    assert store.url.startswith("file:///")


@FUZZ
@given(
    any_text
    | st.builds(lambda b, p: f"s3://{b}/{p}", any_text, any_text)
    | st.builds(
        lambda b, p: f"s3://{b}/{p}",
        st.text("abc09.-", min_size=1, max_size=70),
        st.lists(st.sampled_from(["a", "..", ".", "", "x=1", "é", "%2e"]), max_size=5).map(
            "/".join
        ),
    )
)
@example("s3://[broken/x")
@example("s3://bucket/a/../b")
@example("s3://user:secret@bucket/p")
def test_s3_urls_give_a_bucket_and_a_safe_prefix_or_an_input_error(url: str) -> None:
    from hypotez_s3.config import parse_url

    try:
        bucket, prefix = parse_url(url)
    except InputError as exc:
        assert "secret" not in str(exc)
        return
    assert 3 <= len(bucket) <= 63 and bucket.isascii() and ".." not in bucket
    if prefix:
        parts = prefix.split("/")
        assert all(part not in ("", ".", "..") and part.isascii() for part in parts)


@FUZZ
@given(
    any_text
    | st.builds(lambda h: f"http://{h}", any_text)
    | st.builds(lambda h: f"https://{h}:9000/", any_text)
)
@example("http://[broken")
@example("https://user:secret@[::1")
def test_s3_endpoints_give_a_config_or_a_config_error(endpoint: str) -> None:
    from hypotez_s3.config import S3Config

    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    try:
        config = S3Config.from_settings("s3://bucket/p", Settings.load(env=env))
    except (ConfigError, InputError) as exc:
        assert "secret" not in str(exc)
        return
    if endpoint.strip():
        assert config.endpoint is not None
        assert config.endpoint.startswith(("http://", "https://"))
        assert "secret" not in repr(config) and "secret" not in str(config.shown_endpoint)


@FUZZ
@given(any_text | st.builds(lambda s: f"dialogues/d/turns/{s}", any_text))
def test_s3_key_parsers_answer_none_or_a_valid_value(key: str) -> None:
    from hypotez_s3 import layout

    seq = layout.parse_turn(key, "dialogues/d/turns/")
    assert seq is None or (seq >= 0 and layout.turn_key("d", seq) == key)
    span = layout.parse_segment(key, "dialogues/d/turns/")
    assert span is None or span[0] <= span[1]
    record = layout.parse_record(key, "records/jobs/")
    assert record is None or validate_id(record, "record") == record


@pytest.mark.parametrize("bad", ["s3://[broken/x", "s3://bucket[/x"])
def test_a_malformed_s3_url_names_itself(bad: str) -> None:
    from hypotez_s3.config import parse_url

    with pytest.raises(InputError, match=r"s3://bucket/prefix"):
        parse_url(bad)
