"""S3-only behaviour: configuration, layout, segments, and failures against the real server."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import hypotez
import pytest
from hypotez import (
    ConfigError,
    DialogueInfo,
    InputError,
    MissingDependencyError,
    Settings,
    StorageError,
    Turn,
)
from hypotez.conformance import StorageFactory, check_batches

from .conftest import s3_factory_for

if TYPE_CHECKING:
    from hypotez_test_servers.seaweedfs import SeaweedFS

S3_ENV = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "very-secret-value"}


def config(
    url: str = "s3://bucket/prefix", env: dict[str, str] | None = None, **options: Any
) -> Any:
    from hypotez_s3.config import S3Config

    settings = Settings.load(env=env if env is not None else dict(S3_ENV), options={"s3": options})
    return S3Config.from_settings(url, settings)


def keys(server: SeaweedFS, storage: Any, folder: str = "") -> list[str]:
    import obstore

    root = f"{storage.config.prefix}/"
    listing = obstore.list(server.store(), root + folder)
    return sorted(m["path"][len(root) :] for chunk in listing for m in chunk)


# -- configuration (no server) ------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://my-bucket", "my-bucket", ""),
        ("s3://my-bucket/", "my-bucket", ""),
        ("s3://my.bucket/a/b/", "my.bucket", "a/b"),
        ("s3://b12/team=x/v1.2", "b12", "team=x/v1.2"),
    ],
)
def test_urls_name_bucket_and_prefix(url: str, bucket: str, prefix: str) -> None:
    from hypotez_s3.config import parse_url

    assert parse_url(url) == (bucket, prefix)


@pytest.mark.parametrize(
    "url",
    [
        "s3://Upper/x",
        "s3://b/../x",
        "s3://bucket/./x",
        "s3://bucket/a b",
        "s3://bucket/x?endpoint=http://evil",
        "s3:///no-bucket",
        "file:///tmp/x",
    ],
)
def test_bad_urls_are_refused_with_the_url_named(url: str) -> None:
    from hypotez_s3.config import parse_url

    with pytest.raises(InputError, match="s3://"):
        parse_url(url)


def test_credentials_in_the_url_are_refused_without_echoing_them() -> None:
    from hypotez_s3.config import parse_url

    with pytest.raises(InputError) as caught:
        parse_url("s3://AKID:hunter2@bucket/x")
    assert "hunter2" not in str(caught.value)


def test_options_beat_aws_variables_and_custom_endpoints_use_path_style() -> None:
    env = {**S3_ENV, "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_REGION": "eu-west-1"}
    from_env = config(env=env)
    assert from_env.endpoint == "http://127.0.0.1:9000"
    assert from_env.region == "eu-west-1"
    assert from_env.allow_http  # loopback: plain http is fine
    assert not from_env.virtual_hosted_style  # S3-compatible servers expect path-style
    assert from_env.access_key_id == "AKIDEXAMPLE"
    from_options = config(
        env=env,
        endpoint="https://s3.example.org",
        region="us-west-2",
        access_key_id="A",
        secret_access_key="B",
    )
    assert (from_options.endpoint, from_options.region, from_options.access_key_id) == (
        "https://s3.example.org",
        "us-west-2",
        "A",
    )
    aws = config(env=dict(S3_ENV))
    assert aws.endpoint is None and aws.virtual_hosted_style and not aws.allow_http
    assert aws.region == "us-east-1"


def test_plain_http_to_another_host_needs_an_explicit_yes() -> None:
    with pytest.raises(ConfigError, match="allow_http"):
        config(endpoint="http://10.1.2.3:9000")
    assert config(endpoint="http://10.1.2.3:9000", allow_http="true").allow_http


def test_half_a_credential_pair_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="AWS_SECRET_ACCESS_KEY"):
        config(env={"AWS_ACCESS_KEY_ID": "only-the-id"})


def test_secrets_stay_out_of_repr() -> None:
    assert "very-secret-value" not in repr(config())


def test_missing_obstore_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "obstore", None)  # as if it were not installed
    settings = Settings.load(env=dict(S3_ENV), storage="s3://bucket/x")
    with pytest.raises(MissingDependencyError, match=r"hypotez\[s3\]"):
        hypotez.Context(settings, plugin_manager=hypotez.make_plugin_manager()).get("storage")


# -- layout and segments, on the real server -----------------------------------------------
@pytest.mark.s3
def test_an_append_adds_one_object_and_rewrites_nothing(
    seaweedfs: SeaweedFS, s3_factory: StorageFactory
) -> None:
    import obstore

    storage: Any = s3_factory()
    storage.create_dialogue(DialogueInfo("d1"))
    storage.append_turns("d1", [Turn("user", "a"), Turn("assistant", "b")])
    before = {
        k: obstore.head(seaweedfs.store(), f"{storage.config.prefix}/{k}")["e_tag"]
        for k in keys(seaweedfs, storage)
    }
    storage.append_turns("d1", [Turn("user", "c")])
    after = keys(seaweedfs, storage)
    assert after == sorted([*before, "dialogues/d1/turns/000000000001.json"])
    for key, etag in before.items():
        assert obstore.head(seaweedfs.store(), f"{storage.config.prefix}/{key}")["e_tag"] == etag


@pytest.mark.s3
def test_segments_speed_up_loads_and_are_only_a_cache(seaweedfs: SeaweedFS) -> None:
    import obstore

    factory = s3_factory_for(seaweedfs, segment_size=4)
    storage: Any = factory()
    storage.create_dialogue(DialogueInfo("seg"))
    for n in range(30):
        storage.append_turns("seg", [Turn("user", f"{n}a"), Turn("assistant", f"{n}b")])
    expected = [f"{n}{x}" for n in range(30) for x in "ab"]
    segments = keys(seaweedfs, storage, "dialogues/seg/segments/")
    assert len(segments) == 7  # 28 appends in windows of 4; the last 2 are read one by one
    assert [t.content for t in factory().load_dialogue("seg").turns] == expected
    # A lost segment (its writer died) only costs speed; the next window is still written.
    obstore.delete(seaweedfs.store(), f"{storage.config.prefix}/{segments[2]}")
    assert [t.content for t in factory().load_dialogue("seg").turns] == expected
    for n in range(30, 32):
        storage.append_turns("seg", [Turn("user", f"{n}a"), Turn("assistant", f"{n}b")])
    assert len(keys(seaweedfs, storage, "dialogues/seg/segments/")) == 8
    assert [t.content for t in factory().load_dialogue("seg").turns] == [
        *expected,
        "30a",
        "30b",
        "31a",
        "31b",
    ]


@pytest.mark.s3
def test_a_corrupt_segment_is_reported_and_read_around_from_the_turn_objects(
    seaweedfs: SeaweedFS, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 11 item 6: a segment is only a cache, so a corrupt one must not make the dialogue
    unreadable while every turn object is intact. It is reported by its address (a warning),
    left as it is, and the turns it copies are read from their own objects."""
    import logging

    import obstore

    factory = s3_factory_for(seaweedfs, segment_size=4)
    storage: Any = factory()
    storage.create_dialogue(DialogueInfo("seg"))
    for n in range(13):
        storage.append_turns("seg", [Turn("user", f"{n}a"), Turn("assistant", f"{n}b")])
    expected = [f"{n}{x}" for n in range(13) for x in "ab"]
    segments = keys(seaweedfs, storage, "dialogues/seg/segments/")
    assert len(segments) == 3
    caplog.set_level(logging.WARNING)
    for garbage in (b'{"first": 0}', b"\xff not json", b"[" * 100_000):
        for bad in segments[:2]:
            obstore.put(seaweedfs.store(), f"{storage.config.prefix}/{bad}", garbage)
        caplog.clear()
        assert [t.content for t in factory().load_dialogue("seg").turns] == expected
        for bad in segments[:2]:
            assert f"{storage.url}/{bad}" in caplog.text
    storage.append_turns("seg", [Turn("user", "13a")])  # appends go on
    assert [t.content for t in factory().load_dialogue("seg").turns] == [*expected, "13a"]
    raw = bytes(obstore.get(seaweedfs.store(), f"{storage.config.prefix}/{segments[0]}").bytes())
    assert raw == b"[" * 100_000  # reported, never overwritten
    # Deleted on purpose, it is written again by a later append that completes a window.
    for bad in segments[:2]:
        obstore.delete(seaweedfs.store(), f"{storage.config.prefix}/{bad}")
    for n in range(14, 16):
        storage.append_turns("seg", [Turn("user", f"{n}a")])
    assert keys(seaweedfs, storage, "dialogues/seg/segments/") == [
        *segments,
        "dialogues/seg/segments/000000000012-000000000015.json",
    ]
    caplog.clear()
    loaded = [t.content for t in factory().load_dialogue("seg").turns]
    assert loaded == [*expected, "13a", "14a", "15a"] and "segment" not in caplog.text


@pytest.mark.s3
def test_a_lone_surrogate_is_stored_faithfully_on_s3(s3_factory: StorageFactory) -> None:
    storage: Any = s3_factory()
    storage.create_dialogue(DialogueInfo("u"))
    storage.append_turns("u", [Turn("assistant", "half an emoji: \ud83d")])
    storage.put_record("notes", "n", {"text": "\udc00"})
    fresh: Any = s3_factory()
    assert [t.content for t in fresh.load_dialogue("u").turns] == ["half an emoji: \ud83d"]
    assert fresh.get_record("notes", "n") == {"text": "\udc00"}


@pytest.mark.s3
def test_create_clears_leftovers_of_an_interrupted_delete(
    seaweedfs: SeaweedFS, s3_factory: StorageFactory
) -> None:
    import obstore

    storage: Any = s3_factory()
    orphan = f"{storage.config.prefix}/dialogues/reused/turns/000000000000.json"
    obstore.put(
        seaweedfs.store(),
        orphan,
        b'{"turns": [{"role": "user", "content": "old", "created": "2024-01-01T00:00:00+00:00"}]}',
    )
    storage.create_dialogue(DialogueInfo("reused"))
    assert storage.load_dialogue("reused").turns == ()
    assert keys(seaweedfs, storage) == ["dialogues/reused/info.json"]


# -- failures with the real server ------------------------------------------------------------
@pytest.mark.s3
def test_wrong_credentials_are_a_clear_error_without_the_secret(seaweedfs: SeaweedFS) -> None:
    env = {**seaweedfs.env(), "AWS_SECRET_ACCESS_KEY": "wrong-secret-123"}
    storage = StorageFactory(s3_factory_for(seaweedfs).url, env=env)()
    calls: list[Callable[[], Any]] = [
        storage.list_dialogues,
        lambda: storage.load_dialogue("x"),
        lambda: storage.create_dialogue(DialogueInfo("x")),
        lambda: storage.put_record("jobs", "j", {"a": 1}),
    ]
    for call in calls:
        with pytest.raises(StorageError, match="refused the credentials") as caught:
            call()
        assert "AWS_ACCESS_KEY_ID" in str(caught.value)
        assert "wrong-secret-123" not in str(caught.value)
        assert seaweedfs.secret_key not in str(caught.value)


@pytest.mark.s3
def test_a_missing_bucket_is_a_clear_error(seaweedfs: SeaweedFS) -> None:
    import obstore

    storage = StorageFactory("s3://no-such-bucket/x", env=seaweedfs.env())()
    for call in (storage.list_dialogues, lambda: storage.create_dialogue(DialogueInfo("x"))):
        with pytest.raises(StorageError, match="does not exist") as caught:
            call()
        assert "no-such-bucket" in str(caught.value)
    with pytest.raises(Exception, match="NoSuchBucket"):  # and nothing created it on the way
        obstore.list_with_delimiter(seaweedfs.store("no-such-bucket"))


@pytest.mark.s3
@pytest.mark.slow
def test_server_stopped_mid_run_fails_clearly_and_half_writes_nothing(
    start_seaweedfs: Callable[..., SeaweedFS],
) -> None:
    server = start_seaweedfs()
    factory = StorageFactory(
        s3_factory_for(server).url,
        env={**server.env(), "HYPOTEZ_MAX_RETRIES": "1", "HYPOTEZ_TIMEOUT": "3"},
    )
    storage = factory()
    storage.create_dialogue(DialogueInfo("outage"))
    acknowledged: list[int] = []
    failure: list[BaseException] = []
    running = threading.Event()

    def writer() -> None:
        number = 0
        while True:
            batch = [Turn("user", f"w0-b{number}-t{i}|" + "x" * 2000) for i in range(3)]
            try:
                storage.append_turns("outage", batch)
            except BaseException as exc:
                failure.append(exc)
                return
            acknowledged.append(number)
            number += 1
            if number == 20:
                running.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert running.wait(60)
    server.stop()  # SIGKILL, while the writer is appending
    thread.join(60)
    assert not thread.is_alive()
    assert isinstance(failure[0], StorageError), failure
    assert "did not answer" in str(failure[0])
    with pytest.raises(StorageError, match="did not answer"):
        storage.list_dialogues()
    server.start()
    dialogue = factory().load_dialogue("outage")  # every stored object is whole
    order = check_batches(dialogue, 3)[0]
    assert order[: len(acknowledged)] == acknowledged
    assert len(order) in (len(acknowledged), len(acknowledged) + 1)
    storage.append_turns("outage", [Turn("user", "back")])
    assert factory().load_dialogue("outage").turns[-1].content == "back"


# -- a server that refuses connections for a moment ------------------------------------------
class FlakyDoor:
    """A TCP forwarder on 127.0.0.1 in front of the S3 port that can refuse connections.

    ``close_for(seconds)`` stops listening and cuts every open connection, so the client's
    pooled connections die and its new ones are refused (ECONNREFUSED), as when SeaweedFS
    briefly stops accepting; then it listens again on the same port.
    """

    def __init__(self, upstream_port: int) -> None:
        import socket

        self.upstream = upstream_port
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._conns: list[Any] = []
        self._lock = threading.Lock()
        #: The next request containing these bytes reaches the server, but its answer is lost.
        self.lose_answer_to: bytes | None = None
        self.lost_answers = 0
        self._listener: Any = None
        self._open()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _open(self) -> None:
        import socket

        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: Any) -> None:
        import socket

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(("127.0.0.1", self.upstream))
            with self._lock:
                self._conns += [client, server]
            cut = threading.Event()  # set: the server's answer on this connection is lost
            for a, b, up in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pump, args=(a, b, up, cut), daemon=True).start()

    def _pump(self, src: Any, dst: Any, up: bool, cut: threading.Event) -> None:
        import contextlib
        import socket

        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if up and self.lose_answer_to is not None and self.lose_answer_to in data:
                    with self._lock:
                        if self.lose_answer_to is not None:
                            self.lose_answer_to = None
                            cut.set()  # before the request goes on: its answer cannot pass
                if not up and cut.is_set():
                    self.lost_answers += 1  # the server did the work; the client never hears
                    for sock in (src, dst):
                        sock.shutdown(socket.SHUT_RDWR)
                    break
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.close()

    def _shut(self) -> None:
        import contextlib
        import socket

        # shutdown() first: a bare close() leaves a socket blocked in accept() listening.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def close_for(self, seconds: float) -> threading.Timer:
        self._shut()
        timer = threading.Timer(seconds, self._open)
        timer.start()
        return timer

    def close(self) -> None:
        self._shut()


@pytest.fixture
def flaky_door(seaweedfs: SeaweedFS) -> Any:
    door = FlakyDoor(seaweedfs.ports["s3.port"])
    yield door
    door.close()


def through(door: FlakyDoor, server: SeaweedFS, **options: Any) -> StorageFactory:
    factory = s3_factory_for(server, endpoint=door.endpoint, **options)
    return StorageFactory(factory.url, options=factory.options, env=server.env())


@pytest.mark.s3
def test_connections_refused_for_a_moment_delay_appends_but_lose_or_double_nothing(
    seaweedfs: SeaweedFS, flaky_door: FlakyDoor, caplog: pytest.LogCaptureFixture
) -> None:
    import time

    factory = through(flaky_door, seaweedfs)
    storage = factory()
    storage.create_dialogue(DialogueInfo("refused"))
    storage.append_turns("refused", [Turn("user", "before")])
    reopened = flaky_door.close_for(1.5)  # longer than obstore's own retries last (~0.5 s)
    start = time.monotonic()
    storage.append_turns("refused", [Turn("user", "during"), Turn("assistant", "the outage")])
    waited = time.monotonic() - start
    reopened.join()
    assert waited >= 1.0  # it really waited for the door to open again
    assert "refused the connection" in caplog.text
    flaky_door.close_for(1.5)
    assert [i.id for i in storage.list_dialogues()] == ["refused"]  # reads retry too
    contents = [t.content for t in factory().load_dialogue("refused").turns]
    assert contents == ["before", "during", "the outage"]  # each turn exactly once


@pytest.mark.s3
def test_connections_refused_for_too_long_fail_clearly_in_bounded_time(
    seaweedfs: SeaweedFS, flaky_door: FlakyDoor
) -> None:
    import time

    factory = through(flaky_door, seaweedfs, connect_retry="1.5")
    storage = factory()
    storage.create_dialogue(DialogueInfo("gone"))
    reopened = flaky_door.close_for(6)
    start = time.monotonic()
    with pytest.raises(StorageError, match="did not answer"):
        storage.append_turns("gone", [Turn("user", "lost?")])
    assert 1.5 <= time.monotonic() - start < 5
    reopened.join()
    assert factory().load_dialogue("gone").turns == ()  # refused requests stored nothing


def test_connect_retry_option_is_checked() -> None:
    assert config().connect_retry == 10.0
    assert config(connect_retry="0").connect_retry == 0.0
    assert config(env={**S3_ENV, "HYPOTEZ_TIMEOUT": "2"}).connect_retry == 2.0  # at most timeout
    for bad in ("soon", "-1", "nan"):
        with pytest.raises(ConfigError, match="connect_retry"):
            config(connect_retry=bad)


@pytest.mark.s3
def test_an_append_whose_answer_was_lost_is_stored_once(
    seaweedfs: SeaweedFS, flaky_door: FlakyDoor
) -> None:
    factory = through(flaky_door, seaweedfs)
    storage: Any = factory()
    storage.create_dialogue(DialogueInfo("lost"))
    storage.append_turns("lost", [Turn("user", "first")])
    folder = f"{storage.config.prefix}/dialogues/lost/turns/"
    # The PUT of the next append is stored by the server, but the client never gets the answer:
    # obstore sends it again, the server answers 412 (the object exists), and the storage must
    # recognise its own object by its write id rather than append the turns a second time.
    flaky_door.lose_answer_to = f"PUT /{storage.config.bucket}/{folder}".encode()
    storage.append_turns("lost", [Turn("user", "once"), Turn("assistant", "only once")])
    assert flaky_door.lost_answers == 1
    contents = [t.content for t in factory().load_dialogue("lost").turns]
    assert contents == ["first", "once", "only once"]
    assert keys(seaweedfs, storage, "dialogues/lost/turns/") == [
        "dialogues/lost/turns/000000000000.json",
        "dialogues/lost/turns/000000000001.json",
    ]


def test_credentials_written_into_the_endpoint_never_reach_a_message() -> None:
    """Same class as issue 11 item 9, inside the S3 plugin: a user:password@ part of
    AWS_ENDPOINT_URL is masked in repr, in configuration errors and in storage errors."""
    env = {**S3_ENV, "AWS_ENDPOINT_URL": "http://admin:hunter2@127.0.0.1:9"}
    cfg = config(env=env, connect_retry=0)
    assert "hunter2" not in repr(cfg) and cfg.shown_endpoint == "http://***@127.0.0.1:9"
    with pytest.raises(ConfigError) as caught:
        config(env={**S3_ENV, "AWS_ENDPOINT_URL": "http://admin:hunter2@[::1"})
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        config(env={**S3_ENV, "AWS_ENDPOINT_URL": "http://admin:hunter2@example.com"})
    assert "hunter2" not in str(caught.value)  # plain http to another host
    from hypotez_s3.storage import S3Storage

    storage = S3Storage(config(env=env, connect_retry=0, max_retries=0))
    assert "hunter2" not in repr(storage)
    with pytest.raises(StorageError) as failed:
        storage.list_dialogues()
    assert "hunter2" not in str(failed.value) and "***@127.0.0.1:9" in str(failed.value)
    with pytest.raises(InputError) as caught:
        config(url="s3://admin:hunter2@[bucket/p")
    assert "hunter2" not in str(caught.value)
