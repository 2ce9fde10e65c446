"""The storage conformance suite, run against every storage hypotez ships.

Each class only says how to open a fresh storage and how to plant bad data under it; the tests
themselves live in :mod:`hypotez.conformance`, where plugin authors find them too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypotez import Storage
from hypotez.conformance import StorageConformance, StorageFactory

if TYPE_CHECKING:
    from hypotez_test_servers.seaweedfs import SeaweedFS


class TestFileStorage(StorageConformance):
    @pytest.fixture
    def storage_factory(self, file_factory: StorageFactory) -> StorageFactory:
        self.sizes: dict[str, int] = {}
        return file_factory

    def _dialogue_file(self, storage: Any, dialogue_id: str) -> Path:
        return Path(storage.root) / "dialogues" / f"{dialogue_id}.jsonl"

    def _plant(self, path: Path, data: bytes, *, append: bool) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab" if append else "wb") as fh:
            fh.write(data)
        # Dialogue files only grow: what must never change is everything up to the bad data.
        self.sizes[str(path)] = path.stat().st_size
        return str(path)

    def corrupt_turns(self, storage: Storage, dialogue_id: str) -> str:
        bad = b'{"turns": [{"role": "nobody", "content": 1}]}\n'
        return self._plant(self._dialogue_file(storage, dialogue_id), bad, append=True)

    def corrupt_header(self, storage: Storage, dialogue_id: str) -> str:
        return self._plant(
            self._dialogue_file(storage, dialogue_id), b"\xff\xfenot json\n", append=False
        )

    def corrupt_record(self, storage: Storage, collection: str, record_id: str) -> str:
        path = Path(storage.root) / "records" / collection / f"{record_id}.json"  # type: ignore[attr-defined]
        return self._plant(path, b'[1, 2, "unfinished', append=False)

    def plant_foreign(self, storage: Storage) -> str:
        path = Path(storage.root) / "dialogues" / "notes.jsonl"  # type: ignore[attr-defined]
        return self._plant(path, b'{"hello": "not a dialogue"}\n', append=False)

    def read_raw(self, storage: Storage, location: str) -> bytes:
        return Path(location).read_bytes()[: self.sizes[location]]

    def unterminate_last_append(self, storage: Storage, dialogue_id: str) -> str:
        path = self._dialogue_file(storage, dialogue_id)
        return self._plant(path, path.read_bytes().removesuffix(b"\n"), append=False)

    def link_dialogue(self, storage: Storage, dialogue_id: str, target: str) -> str:
        path = self._dialogue_file(storage, dialogue_id)
        path.unlink()
        path.symlink_to(target)
        return str(path)

    def link_record(self, storage: Storage, collection: str, record_id: str, target: str) -> str:
        path = Path(storage.root) / "records" / collection / f"{record_id}.json"  # type: ignore[attr-defined]
        path.unlink()
        path.symlink_to(target)
        return str(path)


class TestS3Storage(StorageConformance):
    @pytest.fixture
    def storage_factory(self, seaweedfs: SeaweedFS, s3_factory: StorageFactory) -> StorageFactory:
        self.server = seaweedfs
        return s3_factory

    def _full_key(self, storage: Any, key: str) -> str:
        return f"{storage.config.prefix}/{key}"

    def _plant(self, storage: Any, key: str, data: bytes) -> str:
        import obstore

        obstore.put(self.server.store(), self._full_key(storage, key), data)
        return f"{storage.url}/{key}"

    def corrupt_turns(self, storage: Storage, dialogue_id: str) -> str:
        import obstore

        folder = self._full_key(storage, f"dialogues/{dialogue_id}/turns/")
        keys = sorted(
            m["path"] for chunk in obstore.list(self.server.store(), folder) for m in chunk
        )
        last = keys[-1][len(self._full_key(storage, "")) :]
        return self._plant(storage, last, b'{"turns": [{"role": "nobody"}]}')

    def corrupt_header(self, storage: Storage, dialogue_id: str) -> str:
        return self._plant(storage, f"dialogues/{dialogue_id}/info.json", b"\xff\xfenot json")

    def corrupt_record(self, storage: Storage, collection: str, record_id: str) -> str:
        return self._plant(storage, f"records/{collection}/{record_id}.json", b'[1, 2, "unfinished')

    def plant_foreign(self, storage: Storage) -> str:
        return self._plant(storage, "dialogues/notes.txt", b"not a dialogue")

    def read_raw(self, storage: Storage, location: str) -> bytes:
        import obstore

        key = location[len(f"s3://{storage.config.bucket}/") :]  # type: ignore[attr-defined]
        return bytes(obstore.get(self.server.store(), key).bytes())

    def corrupt_cache(self, storage: Storage, dialogue_id: str) -> str:
        """A segment object (a cache of turn objects) holding garbage, named as a real one."""
        key = f"dialogues/{dialogue_id}/segments/{0:012d}-{3:012d}.json"
        return self._plant(storage, key, b'{"first": 0, "batches": "torn')
