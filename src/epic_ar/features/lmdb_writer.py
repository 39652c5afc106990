"""Features as RULSTM reads them: one LMDB environment of float32 vectors, one key per
frame of a 30 fps timeline, each video committed in one transaction."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lmdb
import numpy as np

from epic_ar.errors import EpicArError
from epic_ar.features.stored import as_float32, channels_text, check_same
from epic_ar.features.timeline import rulstm_key
from epic_ar.fileio.atomic import FORCE
from epic_ar.fileio.messages import one_line
from epic_ar.fileio.paths import check_folder_writable, make_folders, named_write_errors

SETTINGS_KEY = b"__epic_ar__/settings"  # the settings, JSON
DONE_PREFIX = b"__epic_ar__/done/"  # + video id -> {"frames": N, "channels": C}
_GROWTH_TRIES = 64  # map size doublings and re-reads before giving up (2^64 bytes: never)


class RulstmLmdbWriter:
    """One LMDB environment (folder `out`: data.mdb, lock.mdb). A video's keys
    `rulstm_key(video, n)` -> row n-1's float32 bytes and its marker `DONE_PREFIX + video`
    go in one write transaction; the settings are under `SETTINGS_KEY`. `force` drops
    every key of an environment epic-ar wrote (never one it did not write)."""

    def __init__(
        self, out: Path, settings: dict[str, Any], *, force: bool, initial_map_size: int
    ) -> None:
        self.out = out
        self._settings = settings
        self._summary: str | None = None
        if initial_map_size < 1:
            raise ValueError(f"initial_map_size: {initial_map_size} is not >= 1")
        if out.exists() and not out.is_dir():
            raise EpicArError(
                f"{out}: is a file; rulstm-lmdb writes a folder (an LMDB environment)"
            )
        if out.is_dir() and any(out.iterdir()) and not (out / "data.mdb").is_file():
            raise EpicArError(
                f"{out}: is a folder that holds other files, not an LMDB environment; "
                "give a new or empty folder"
            )
        check_folder_writable(out, out)
        with named_write_errors(out):
            make_folders(out)
        try:
            self._env: lmdb.Environment | None = lmdb.open(
                str(out), map_size=initial_map_size, subdir=True, sync=True, lock=True
            )
        except lmdb.Error as exc:
            raise EpicArError(
                f"{out}: cannot open as an LMDB environment ({one_line(exc)})"
            ) from None
        try:
            self._write(lambda txn: self._adopt(txn, force=force))
        except BaseException:
            self.close()
            raise

    def _adopt(self, txn: lmdb.Transaction, *, force: bool) -> None:
        # one write transaction: processes opening the output at once see one settings value
        stored = txn.get(SETTINGS_KEY)
        if stored is None and txn.cursor().first():
            raise EpicArError(
                f"{self.out}: is an LMDB environment that epic-ar did not write (it has no "
                f"{SETTINGS_KEY.decode()}); give a new or empty folder"
            )
        if stored is not None and not force:
            try:
                previous = json.loads(bytes(stored))
            except ValueError:
                previous = None
            if not isinstance(previous, dict):
                raise EpicArError(
                    f"{self.out}: its {SETTINGS_KEY.decode()} is not a JSON object; pass ",
                    FORCE,
                    " to start again",
                )
            check_same(self.out, previous, self._settings)
            return
        if stored is not None:  # force: start again
            txn.drop(self._open_env().open_db(None, txn=txn), delete=False)
        txn.put(SETTINGS_KEY, json.dumps(self._settings).encode())

    def _open_env(self) -> lmdb.Environment:
        if self._env is None:
            raise ValueError(f"{self.out}: the writer is closed")
        return self._env

    def _write(self, fill: Callable[[lmdb.Transaction], None], payload: int = 0) -> None:
        """Run `fill` in one write transaction, growing the map and starting again while it
        is full. `payload`: about how many bytes `fill` puts (how much to grow at least)."""
        env = self._open_env()
        for _ in range(_GROWTH_TRIES):
            try:
                with env.begin(write=True) as txn:
                    fill(txn)
                return
            except lmdb.MapFullError:  # the transaction is aborted: grow and redo it whole
                size = int(env.info()["map_size"])
                env.set_mapsize(max(2 * size, size + 2 * payload))
            except lmdb.MapResizedError:  # another process grew the map: adopt its size
                env.set_mapsize(0)
            except lmdb.Error as exc:
                raise EpicArError(f"{self.out}: cannot write ({one_line(exc)})") from None
        raise EpicArError(f"{self.out}: cannot grow the LMDB map enough")

    def _read(self, read: Callable[[lmdb.Transaction], Any]) -> Any:
        env = self._open_env()
        for _ in range(_GROWTH_TRIES):
            try:
                with env.begin() as txn:
                    return read(txn)
            except lmdb.MapResizedError:
                env.set_mapsize(0)
        raise EpicArError(f"{self.out}: cannot follow the LMDB map's growth")

    def finished(self, video_id: str) -> bool:
        marker = DONE_PREFIX + video_id.encode()
        return bool(self._read(lambda txn: txn.get(marker) is not None))

    def commit(
        self, video_id: str, features: np.ndarray, names: Sequence[str] | None = None
    ) -> None:
        """Store row n-1 of `features` [N, C] as RULSTM frame n (1..N) of `video_id`."""
        array = as_float32(features, video_id)
        marker = DONE_PREFIX + video_id.encode()
        info = json.dumps({"frames": len(array), "channels": array.shape[1]}).encode()

        def fill(txn: lmdb.Transaction) -> None:
            old = txn.get(marker)
            if old is not None:  # committed before: drop frames the new rows do not cover
                for n in range(len(array) + 1, int(json.loads(bytes(old))["frames"]) + 1):
                    txn.delete(rulstm_key(video_id, n).encode())
            for n, row in enumerate(array, start=1):
                txn.put(rulstm_key(video_id, n).encode(), row.tobytes())
            txn.put(marker, info)  # last: a video with its marker has every key

        self._write(fill, payload=array.nbytes + 64 * len(array))

    def _stats(self, txn: lmdb.Transaction) -> str:
        videos = frames = 0
        channels: set[int] = set()
        cursor = txn.cursor()
        if cursor.set_range(DONE_PREFIX):
            for key, value in cursor:
                if not bytes(key).startswith(DONE_PREFIX):
                    break
                info = json.loads(bytes(value))
                videos, frames = videos + 1, frames + int(info["frames"])
                channels.add(int(info["channels"]))
        return (
            f"{self.out}: {frames:,} keys of {channels_text(channels)} float32 values for "
            f"{videos:,} video{'s' if videos != 1 else ''} (LMDB for RULSTM)"
        )

    def finish(self, narration_ids: Sequence[str] | None = None) -> None:
        self._summary = str(self._read(self._stats))
        self.close()

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None

    def summary(self) -> str:
        if self._env is not None:
            return str(self._read(self._stats))
        if self._summary is None:
            env = lmdb.open(str(self.out), readonly=True, lock=False)
            try:
                with env.begin() as txn:
                    self._summary = self._stats(txn)
            finally:
                env.close()
        return self._summary
