"""Storage on S3 and S3-compatible servers (SeaweedFS, MinIO...), through obstore.

Layout: see :mod:`hypotez_s3.layout`. How the guarantees are kept:

- **Append is O(1)**: each ``append_turns`` call creates one new object ``turns/<seq>.json``
  with ``If-None-Match: *`` (obstore ``mode="create"``); nothing already stored is rewritten.
  The turns of one call are in one object, so they stay together.
- **Concurrent writers lose nothing**: two writers that pick the same ``seq`` cannot both
  create it; the loser (HTTP 412) lists the objects after that ``seq`` and tries the next free
  one. Sequence numbers are therefore dense (0, 1, 2, ...) and give every reader the same order.
  Each object carries a random write id, so a PUT that was retried after a lost response and
  then got 412 recognises its own object instead of storing the turns twice.
- **Finding the end is cheap**: a writer remembers the next ``seq`` per dialogue (checked
  against the header's ETag, so a deleted and re-created dialogue is noticed). A fresh writer
  lists the segments (one short page) and then only the objects after the last segment.
- **Loads are fast at any length**: every ``segment_size`` appends, the writer that completes a
  window copies it into ``segments/<first>-<last>.json`` (created with ``If-None-Match: *``;
  turn objects are immutable, so any copy is identical). A load reads the segments plus the few
  objects after them, in parallel. Segments are only a cache: if a writer dies before writing
  one, loads read the turn objects instead and a later append fills the gap; a segment that is
  corrupt (or vanishes while loading) is reported with a warning and read around the same way.
- **Records** are one object each; ``put_record`` reads the current object and replaces it
  with ``If-Match: <etag>`` (or creates it with ``If-None-Match: *``), retrying on conflict, and
  refuses to replace an object that is not a hypotez record. ``update_record`` does the same
  read-change-write cycle, calling ``change`` again on the newer record after each 412, so
  concurrent updates of one record all land (``ConflictError`` after ``MAX_ATTEMPTS``).
- **Corrupt or foreign objects** are reported with their ``s3://`` address (an error for the
  dialogue or record they belong to, a log warning when listing) and never overwritten: every
  write to an existing key is conditional on what was read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from hypotez import (
    SCHEMA_VERSION,
    ConflictError,
    CorruptDataError,
    Dialogue,
    DialogueInfo,
    DialogueNotFoundError,
    Settings,
    Storage,
    StorageError,
    Turn,
    validate_id,
)
from hypotez.files import json_bytes
from hypotez_s3 import layout
from hypotez_s3.config import S3Config
from hypotez_s3.errors import is_connect_error, is_not_found, translate

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How many times a conditional write is retried against concurrent writers before giving up.
MAX_ATTEMPTS = 200
#: How many missing segments one append may write (bounds the latency of that append).
MAX_SEGMENTS_PER_APPEND = 4
#: First and longest pause between attempts to reach a server that refused the connection.
CONNECT_BACKOFF = (0.2, 2.0)


def _turns(data: Any) -> list[Turn]:
    return [Turn.from_dict(t) for t in data["turns"]]


class S3Storage(Storage):
    """Dialogues and records under ``s3://bucket/prefix``, natively async on obstore's async
    API; :class:`hypotez.Storage` derives the blocking methods (on hypotez's portal loop)."""

    name = "s3"

    def __init__(self, config: S3Config) -> None:
        from hypotez import portal
        from obstore.store import S3Store

        # obstore's runtime threads hand results back through Python and may want the GIL
        # after finalisation began: at exit, once the portal loop stopped, give them a moment
        # (without it, about 1 in 25 writer processes died with SIGABRT at exit).
        portal.after_stop(_settle)
        self.config = config
        self.url = config.url
        self._store = S3Store(config.bucket, **config.store_kwargs())
        # dialogue id -> (ETag of its header, next sequence number), for the appends we made.
        self._tails: dict[str, tuple[str, int]] = {}
        self._tails_lock = threading.Lock()
        self._checked = False

    @classmethod
    def from_settings(cls, url: str, settings: Settings) -> S3Storage:
        return cls(S3Config.from_settings(url, settings))

    def __repr__(self) -> str:
        return f"S3Storage({self.url!r}, endpoint={self.config.shown_endpoint!r})"

    # -- small helpers --------------------------------------------------------------------
    def where(self, key: str) -> str:
        """The full ``s3://`` address of a key, for messages."""
        return f"{self.url}/{key}"

    def _error(self, exc: BaseException, action: str, key: str) -> StorageError:
        return translate(exc, action, self.where(key), self.config.shown_endpoint)

    async def _bounded(self, jobs: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
        """Run ``jobs`` with at most ``concurrency`` in flight; results in order."""
        limit = asyncio.Semaphore(self.config.concurrency)

        async def one(job: Callable[[], Awaitable[T]]) -> T:
            async with limit:
                return await job()

        return list(await asyncio.gather(*(one(j) for j in jobs)))

    async def _call(self, request: Callable[[], Awaitable[T]]) -> T:
        """Run one obstore request, retrying while the server refuses to connect.

        obstore retries a refused connection too, but gives up within about half a second; a
        server restarting or briefly overloaded (SeaweedFS under 8 writers) refuses for longer.
        Such a request never reached the server, so repeating it cannot store anything twice.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.connect_retry
        pause = CONNECT_BACKOFF[0]
        while True:
            try:
                return await request()
            except Exception as exc:
                left = deadline - loop.time()
                if not is_connect_error(exc) or left <= 0:
                    raise
                log.warning(
                    "%s refused the connection; retrying for up to %.1f s more",
                    self.config.shown_endpoint or "S3",
                    left,
                )
                await asyncio.sleep(min(pause, left))
                pause = min(pause * 2, CONNECT_BACKOFF[1])

    async def _check_bucket(self) -> None:
        """Fail once with a clear message if the bucket or the credentials are wrong.

        A HEAD on a missing bucket answers a bare 404 that looks like a missing object, so the
        first operation lists the prefix (two or three entries) to tell the two apart.
        """
        if self._checked:
            return
        import obstore

        try:
            await self._call(lambda: obstore.list_with_delimiter_async(self._store, None))
        except Exception as exc:
            raise self._error(exc, "open the storage", "") from exc
        self._checked = True

    async def acheck(self) -> None:
        """The bucket exists and the credentials work (listed once; a success is remembered)."""
        await self._check_bucket()

    async def alist_dialogue_ids(self) -> list[str]:
        """Every dialogue with a header object, readable or not (copy names unreadable ones).

        Folders alone do not count: some servers keep a folder after its objects are deleted,
        and an interrupted delete removes the header first.
        """
        ids = await self._list_folders(layout.DIALOGUES, "dialogue", "list dialogues")

        async def present(dialogue_id: str) -> bool:
            try:
                await self._head_info(dialogue_id, "list dialogues")
            except DialogueNotFoundError:
                return False
            return True

        found = await self._bounded([partial(present, i) for i in ids])
        return sorted(i for i, there in zip(ids, found, strict=True) if there)

    async def _get(self, key: str, action: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag, or None if it does not exist."""
        import obstore

        async def fetch() -> tuple[bytes, str]:
            result = await obstore.get_async(self._store, key)
            data = bytes(await result.bytes_async())
            return data, str(result.meta.get("e_tag") or "")

        try:
            return await self._call(fetch)
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise self._error(exc, action, key) from exc

    async def _put(self, key: str, data: bytes, mode: Any, action: str) -> bool:
        """Write conditionally; False if the condition failed (the key exists or changed)."""
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        try:
            await self._call(
                lambda: obstore.put_async(self._store, key, data, mode=mode, use_multipart=False)
            )
        except (AlreadyExistsError, PreconditionError):
            return False
        except Exception as exc:
            raise self._error(exc, action, key) from exc
        return True

    async def _list(self, folder: str, action: str, offset: str | None = None) -> list[str]:
        """Every key under ``folder`` (after ``offset``), relative to the prefix, in order."""
        import obstore

        async def listing() -> list[str]:
            keys: list[str] = []
            stream = obstore.list(self._store, folder, offset=offset, chunk_size=1000)
            async for chunk in stream:
                keys.extend(meta["path"] for meta in chunk)
            return keys

        try:
            return sorted(await self._call(listing))
        except Exception as exc:
            raise self._error(exc, action, folder) from exc

    async def _delete(self, keys: Sequence[str], action: str) -> None:
        import obstore

        if not keys:
            return
        try:
            await self._call(lambda: obstore.delete_async(self._store, list(keys)))
        except Exception as exc:
            if not is_not_found(exc):
                raise self._error(exc, action, keys[0]) from exc

    def _parse(self, key: str, raw: bytes, build: Callable[[Any], T], what: str) -> T:
        try:
            return build(json.loads(raw))
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise CorruptDataError(
                f"{self.where(key)} is not {what} ({str(exc)[:200]}). It was left untouched: "
                "repair, move or delete it."
            ) from exc

    # -- dialogues: create, exists, delete ------------------------------------------------
    async def acreate_dialogue(self, info: DialogueInfo) -> None:
        await self._check_bucket()
        key = layout.info_key(info.id)
        # Objects left by a delete that was interrupted belong to no dialogue: clear them so
        # that the new dialogue does not inherit old turns.
        leftovers = await self._list(layout.dialogue_dir(info.id), "create a dialogue")
        if key in leftovers:
            raise StorageError(
                f"Dialogue {info.id!r} already exists in {self.url}; pick another id."
            )
        if leftovers:
            log.warning(
                "Removing %d objects left by an unfinished delete of %s", len(leftovers), info.id
            )
            await self._delete(leftovers, "clear an unfinished delete")
        # A random uid makes every incarnation's header (and so its ETag) unique.
        body = json_bytes({**info.to_dict(), "uid": uuid.uuid4().hex})
        if not await self._put(key, body, "create", "create a dialogue"):
            existing = await self._get(key, "create a dialogue")
            if existing is None or existing[0] != body:  # equal: our own retried PUT
                raise StorageError(
                    f"Dialogue {info.id!r} already exists in {self.url}; pick another id."
                )

    async def _head_info(self, dialogue_id: str, action: str) -> str:
        """The header's ETag; DialogueNotFoundError if there is none."""
        import obstore

        key = layout.info_key(dialogue_id)
        try:
            meta = await self._call(lambda: obstore.head_async(self._store, key))
        except Exception as exc:
            if is_not_found(exc):
                raise DialogueNotFoundError(f"No dialogue {dialogue_id!r} in {self.url}.") from None
            raise self._error(exc, action, key) from exc
        return str(meta.get("e_tag") or "")

    async def adialogue_exists(self, dialogue_id: str) -> bool:
        layout.info_key(dialogue_id)
        await self._check_bucket()
        try:
            await self._head_info(dialogue_id, "check a dialogue")
        except DialogueNotFoundError:
            return False
        return True

    async def adelete_dialogue(self, dialogue_id: str) -> None:
        layout.info_key(dialogue_id)
        await self._check_bucket()
        await self._head_info(dialogue_id, "delete a dialogue")
        # The header goes first, so the dialogue disappears in one step; the rest follows. If
        # this is interrupted, the next create of this id clears what is left.
        await self._delete([layout.info_key(dialogue_id)], "delete a dialogue")
        rest = await self._list(layout.dialogue_dir(dialogue_id), "delete a dialogue")
        await self._delete(rest, "delete a dialogue")
        with self._tails_lock:
            self._tails.pop(dialogue_id, None)

    # -- dialogues: append ------------------------------------------------------------------
    async def aappend_turns(self, dialogue_id: str, turns: Sequence[Turn]) -> None:
        layout.info_key(dialogue_id)  # validates the id before anything else
        if not turns:
            return
        await self._check_bucket()
        write_id = uuid.uuid4().hex
        body = json_bytes(
            {"schema": SCHEMA_VERSION, "write": write_id, "turns": [t.to_dict() for t in turns]}
        )
        etag = await self._head_info(dialogue_id, "append to a dialogue")
        with self._tails_lock:
            cached = self._tails.get(dialogue_id)
        if cached is not None and cached[0] == etag:
            seq = cached[1]
        else:
            seq = await self._next_seq(dialogue_id)
        for _ in range(MAX_ATTEMPTS):
            key = layout.turn_key(dialogue_id, seq)
            if await self._put(key, body, "create", "append to a dialogue"):
                break
            existing = await self._get(key, "append to a dialogue")
            if existing is not None and existing[0] == body:
                break  # our own PUT, retried by the client after a lost response
            seq = await self._next_seq(dialogue_id, after=seq)
        else:
            raise ConflictError(
                f"Could not append to dialogue {dialogue_id!r} in {self.url}: other writers won "
                f"{MAX_ATTEMPTS} times in a row. Nothing was appended; try again."
            )
        with self._tails_lock:
            self._tails[dialogue_id] = (etag, seq + 1)
        if (seq + 1) % self.config.segment_size == 0:
            await self._compact(dialogue_id, seq)

    async def _next_seq(self, dialogue_id: str, after: int | None = None) -> int:
        """The first free sequence number after ``after`` (after the segments if None)."""
        if after is None:
            segments = await self._segment_chain(dialogue_id, "append to a dialogue")
            after = segments[-1][1] if segments else -1
        folder = layout.turns_dir(dialogue_id)
        offset = layout.turn_key(dialogue_id, after) if after >= 0 else None
        last = after
        for key in await self._list(folder, "append to a dialogue", offset=offset):
            seq = layout.parse_turn(key, folder)
            if seq is not None:
                last = max(last, seq)
        return last + 1

    async def _segments(self, dialogue_id: str, action: str) -> dict[int, int]:
        """first -> last of every segment object of the dialogue."""
        folder = layout.segments_dir(dialogue_id)
        found: dict[int, int] = {}
        for key in await self._list(folder, action):
            span = layout.parse_segment(key, folder)
            if span is None:
                log.warning("Ignoring foreign object %s", self.where(key))
            else:
                found[span[0]] = max(found.get(span[0], -1), span[1])
        return found

    async def _segment_chain(self, dialogue_id: str, action: str) -> list[tuple[int, int]]:
        """The segments that follow each other from append 0, in order."""
        found = await self._segments(dialogue_id, action)
        chain: list[tuple[int, int]] = []
        first = 0
        while first in found:
            chain.append((first, found[first]))
            first = found[first] + 1
        return chain

    async def _compact(self, dialogue_id: str, upto: int) -> None:
        """Copy complete windows of appends up to ``upto`` into segments. Best effort.

        Missing windows are filled from the start, so a segment lost with a crashed writer is
        written by a later append; at most a few per append, to bound its latency.
        """
        size = self.config.segment_size
        try:
            found = await self._segments(dialogue_id, "compact a dialogue")
            first, written = 0, 0
            while written < MAX_SEGMENTS_PER_APPEND:
                if first in found:
                    first = found[first] + 1
                    continue
                last = first + size - 1
                if last > upto:
                    return
                await self._write_segment(dialogue_id, first, last)
                written += 1
                first = last + 1
        except (StorageError, OSError) as exc:
            # The append itself succeeded; a missing segment only makes loads slower.
            log.warning("Could not write a segment of dialogue %s: %s", dialogue_id, exc)

    async def _write_segment(self, dialogue_id: str, first: int, last: int) -> None:
        keys = [layout.turn_key(dialogue_id, seq) for seq in range(first, last + 1)]
        blobs = await self._bounded([partial(self._get, k, "compact a dialogue") for k in keys])
        batches = []
        for seq, key, blob in zip(range(first, last + 1), keys, blobs, strict=True):
            if blob is None:
                raise StorageError(f"{self.where(key)} is missing; cannot write the segment.")
            data = self._parse(key, blob[0], lambda d: (d, _turns(d)), "a hypotez append")[0]
            batches.append({"seq": seq, "write": data.get("write"), "turns": data["turns"]})
        body = json_bytes(
            {"schema": SCHEMA_VERSION, "first": first, "last": last, "batches": batches}
        )
        # Another writer may have written the same segment: identical content, nothing to do.
        await self._put(layout.segment_key(dialogue_id, first, last), body, "create", "compact")

    # -- dialogues: load and list ---------------------------------------------------------
    async def aload_dialogue(self, dialogue_id: str) -> Dialogue:
        key = layout.info_key(dialogue_id)
        await self._check_bucket()
        got = await self._get(key, "load a dialogue")
        if got is None:
            raise DialogueNotFoundError(f"No dialogue {dialogue_id!r} in {self.url}.")
        info = self._parse(key, got[0], DialogueInfo.from_dict, "a hypotez dialogue header")
        if info.id != dialogue_id:
            raise CorruptDataError(
                f"{self.where(key)} holds dialogue {info.id!r}, not {dialogue_id!r}."
            )
        chain = await self._segment_chain(dialogue_id, "load a dialogue")
        covered = chain[-1][1] if chain else -1
        folder = layout.turns_dir(dialogue_id)
        offset = layout.turn_key(dialogue_id, covered) if covered >= 0 else None
        tail: list[str] = []
        for k in await self._list(folder, "load a dialogue", offset=offset):
            if layout.parse_turn(k, folder) is None:
                log.warning("Ignoring foreign object %s", self.where(k))
            else:
                tail.append(k)
        keys = [layout.segment_key(dialogue_id, a, b) for a, b in chain] + tail
        blobs = await self._bounded([partial(self._get, k, "load a dialogue") for k in keys])
        turns: list[Turn] = []
        for k, blob, span in zip(keys, blobs, chain + [None] * len(tail), strict=True):
            if span is not None:
                turns.extend(await self._segment_turns(dialogue_id, k, blob, span))
            elif blob is None:
                raise StorageError(
                    f"{self.where(k)} disappeared while loading dialogue {dialogue_id!r} "
                    "(deleted meanwhile?); load it again."
                )
            else:
                turns.extend(self._parse(k, blob[0], _turns, "a hypotez append"))
        return Dialogue(info, turns)

    async def _segment_turns(
        self, dialogue_id: str, key: str, blob: tuple[bytes, str] | None, span: tuple[int, int]
    ) -> list[Turn]:
        """The turns of a segment; if it is unreadable, the turn objects it copies.

        A segment is only a cache of turn objects, which are never removed while the dialogue
        exists: a corrupt or vanished one is reported (a warning naming it) and read around,
        never a reason to fail the load.
        """
        if blob is not None:
            try:
                return self._parse(key, blob[0], partial(_segment, span=span), "a segment")
            except CorruptDataError as exc:
                log.warning(
                    "Ignoring a corrupt segment (only a cache), reading its turn objects "
                    "instead; delete it and a later append writes it again: %s",
                    exc,
                )
        else:
            log.warning("Segment %s vanished; reading its turn objects instead", self.where(key))
        first, last = span
        folder = layout.turns_dir(dialogue_id)
        offset = layout.turn_key(dialogue_id, first - 1) if first > 0 else None
        keys = []
        for k in await self._list(folder, "load a dialogue", offset=offset):
            seq = layout.parse_turn(k, folder)
            if seq is not None and first <= seq <= last:
                keys.append(k)
        blobs = await self._bounded([partial(self._get, k, "load a dialogue") for k in keys])
        turns: list[Turn] = []
        for k, got in zip(keys, blobs, strict=True):
            if got is None:
                raise StorageError(
                    f"{self.where(k)} disappeared while loading dialogue {dialogue_id!r} "
                    "(deleted meanwhile?); load it again."
                )
            turns.extend(self._parse(k, got[0], _turns, "a hypotez append"))
        return turns

    async def _list_folders(self, prefix: str, kind: str, action: str) -> list[str]:
        """The valid ids of the folders directly under ``prefix``; anything else is foreign."""
        import obstore

        await self._check_bucket()
        try:
            listing = await self._call(
                lambda: obstore.list_with_delimiter_async(self._store, prefix)
            )
        except Exception as exc:
            raise self._error(exc, action, prefix) from exc
        for meta in listing["objects"]:
            log.warning("Ignoring foreign object %s", self.where(meta["path"]))
        names = []
        for folder in listing["common_prefixes"]:
            name = folder[len(prefix) :].rstrip("/")
            try:
                names.append(validate_id(name, kind))
            except ValueError:
                log.warning("Ignoring foreign folder %s/", self.where(folder.rstrip("/")))
        return names

    async def alist_dialogues(self) -> list[DialogueInfo]:
        ids = await self._list_folders(layout.DIALOGUES, "dialogue", "list dialogues")
        blobs = await self._bounded(
            [partial(self._get, layout.info_key(i), "list dialogues") for i in ids]
        )
        infos = []
        for dialogue_id, blob in zip(ids, blobs, strict=True):
            if blob is None:
                continue  # deleted while listing, or leftovers of an unfinished delete
            key = layout.info_key(dialogue_id)
            try:
                infos.append(self._parse(key, blob[0], DialogueInfo.from_dict, "a dialogue header"))
            except CorruptDataError as exc:
                log.warning("Skipping a dialogue: %s", exc)
        return sorted(infos, key=lambda i: (i.created, i.id))

    # -- records ------------------------------------------------------------------------
    async def aput_record(self, collection: str, record_id: str, data: Mapping[str, Any]) -> None:
        key = layout.record_key(collection, record_id)
        body = json_bytes(dict(data))
        await self._check_bucket()
        for _ in range(MAX_ATTEMPTS):
            current = await self._get(key, "write a record")
            if current is None:
                mode: Any = "create"
            else:
                self._parse(key, current[0], _record, "a hypotez record")  # refuse foreign data
                mode = {"e_tag": current[1]}
            if await self._put(key, body, mode, "write a record"):
                return
        raise ConflictError(
            f"Could not write {self.where(key)}: it kept changing under us; try again."
        )

    async def aupdate_record(
        self,
        collection: str,
        record_id: str,
        change: Callable[[dict[str, Any] | None], Mapping[str, Any]],
    ) -> dict[str, Any]:
        """:meth:`update_record` natively: a conditional PUT on the ETag that was read.

        If another writer replaced (or created) the record in between, the server answers 412
        and ``change`` runs again on the newer record, at most ``MAX_ATTEMPTS`` times.
        """
        key = layout.record_key(collection, record_id)
        await self._check_bucket()
        for _ in range(MAX_ATTEMPTS):
            got = await self._get(key, "update a record")
            current: dict[str, Any] | None = None
            mode: Any = "create"
            if got is not None:  # a foreign object raises here: it is reported, never overwritten
                current = self._parse(key, got[0], _record, "a hypotez record")
                mode = {"e_tag": got[1]}
            new = dict(change(current))
            if await self._put(key, json_bytes(new), mode, "update a record"):
                return new
        raise ConflictError(
            f"Could not update {self.where(key)}: other writers kept changing it "
            f"({MAX_ATTEMPTS} attempts); try again."
        )

    async def aget_record(self, collection: str, record_id: str) -> dict[str, Any]:
        key = layout.record_key(collection, record_id)
        await self._check_bucket()
        got = await self._get(key, "read a record")
        if got is None:
            raise DialogueNotFoundError(f"No {collection} record {record_id!r} in {self.url}.")
        return self._parse(key, got[0], _record, "a hypotez record")

    async def alist_records(self, collection: str) -> list[dict[str, Any]]:
        folder = layout.records_dir(collection)
        await self._check_bucket()
        keys = []
        for key in await self._list(folder, "list records"):
            if layout.parse_record(key, folder) is None:
                log.warning("Ignoring foreign object %s", self.where(key))
            else:
                keys.append(key)
        blobs = await self._bounded([partial(self._get, k, "list records") for k in keys])
        return [
            self._parse(k, b[0], _record, "a hypotez record")
            for k, b in zip(keys, blobs, strict=True)
            if b is not None
        ]

    async def alist_collections(self) -> list[str]:
        return sorted(
            await self._list_folders(layout.RECORDS, "collection", "list record collections")
        )

    async def alist_record_ids(self, collection: str) -> list[str]:
        folder = layout.records_dir(collection)
        await self._check_bucket()
        ids = []
        for key in await self._list(folder, "list records"):
            record_id = layout.parse_record(key, folder)
            if record_id is None:
                log.warning("Ignoring foreign object %s", self.where(key))
            else:
                ids.append(record_id)
        return sorted(ids)

    async def adelete_record(self, collection: str, record_id: str) -> None:
        import obstore

        key = layout.record_key(collection, record_id)
        await self._check_bucket()
        try:
            await self._call(lambda: obstore.head_async(self._store, key))
        except Exception as exc:
            if is_not_found(exc):
                raise DialogueNotFoundError(
                    f"No {collection} record {record_id!r} in {self.url}."
                ) from None
            raise self._error(exc, "delete a record", key) from exc
        await self._delete([key], "delete a record")


def _record(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TypeError("not a JSON object")
    return data


def _segment(data: Any, span: tuple[int, int]) -> list[Turn]:
    """The turns of a segment, after checking it holds exactly the appends its name says."""
    first, last = span
    seqs = [b["seq"] for b in data["batches"]]
    if data["first"] != first or data["last"] != last or seqs != list(range(first, last + 1)):
        raise ValueError(f"it should hold appends {first}..{last} but holds {seqs[:3]}...")
    return [Turn.from_dict(t) for batch in data["batches"] for t in batch["turns"]]


def _settle() -> None:
    import time

    time.sleep(0.1)
