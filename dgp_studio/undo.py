"""Undoable edits of the picture and the mask, stored as changed tiles only.

A brush stroke on a 100-megapixel mask keeps a few 256² tiles, not two copies
of the whole mask."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import numpy as np
from PySide6.QtGui import QUndoCommand

TILE = 256
Bounds = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)
T = TypeVar("T")


class TileRecorder:
    """Remembers the original content of every tile touched during one edit."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.before: dict[tuple[int, int], np.ndarray] = {}

    def touch(self, x0: int, y0: int, x1: int, y1: int) -> None:
        h, w = self.array.shape[:2]
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x0 >= x1 or y0 >= y1:
            return
        for ty in range(y0 // TILE, (y1 - 1) // TILE + 1):
            for tx in range(x0 // TILE, (x1 - 1) // TILE + 1):
                if (ty, tx) not in self.before:
                    self.before[(ty, tx)] = self.array[
                        ty * TILE : (ty + 1) * TILE, tx * TILE : (tx + 1) * TILE
                    ].copy()

    def touch_all(self) -> None:
        h, w = self.array.shape[:2]
        self.touch(0, 0, w, h)

    def tiles(self) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
        """(before, after) of every tile that really changed."""
        out: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        for (ty, tx), old in self.before.items():
            new = self.array[ty * TILE : (ty + 1) * TILE, tx * TILE : (tx + 1) * TILE]
            if not np.array_equal(old, new):
                out[(ty, tx)] = (old, new.copy())
        return out


class TileEdit(QUndoCommand):
    """An edit already applied to ``array``; undo/redo swap its tiles back and forth.

    ``notify(bounds)`` tells the owner which area changed."""

    def __init__(
        self,
        text: str,
        array: np.ndarray,
        tiles: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]],
        notify: Callable[[Bounds], None],
    ) -> None:
        super().__init__(text)
        self.array = array
        self.tile_data = tiles
        self.notify = notify
        self._applied = True  # the edit was made before the command was pushed

    def bounds(self) -> Bounds:
        h, w = self.array.shape[:2]
        tys = [k[0] for k in self.tile_data]
        txs = [k[1] for k in self.tile_data]
        return (
            min(txs) * TILE,
            min(tys) * TILE,
            min(w, (max(txs) + 1) * TILE),
            min(h, (max(tys) + 1) * TILE),
        )

    def _write(self, which: int) -> None:
        for (ty, tx), pair in self.tile_data.items():
            self.array[ty * TILE : (ty + 1) * TILE, tx * TILE : (tx + 1) * TILE] = pair[which]
        self.notify(self.bounds())

    def redo(self) -> None:
        if self._applied:
            self._applied = False
            return
        self._write(1)

    def undo(self) -> None:
        self._write(0)


def record_edit(
    text: str,
    array: np.ndarray,
    notify: Callable[[Bounds], None],
    edit: Callable[[TileRecorder], object],
) -> TileEdit | None:
    """Run ``edit`` (which must ``touch`` what it changes) and wrap it as a command;
    None when nothing changed."""
    rec = TileRecorder(array)
    edit(rec)
    tiles = rec.tiles()
    if not tiles:
        return None
    cmd = TileEdit(text, array, tiles, notify)
    notify(cmd.bounds())
    return cmd


class SwapCommand(QUndoCommand, Generic[T]):
    """Replaces a whole object (e.g. the picture after super-resolution) and back:
    ``apply(value)`` installs one of the two values."""

    def __init__(self, text: str, old: T, new: T, apply: Callable[[T], None]) -> None:
        super().__init__(text)
        self.old, self.new, self.apply = old, new, apply

    def redo(self) -> None:
        self.apply(self.new)

    def undo(self) -> None:
        self.apply(self.old)


class ApplyCommand(QUndoCommand):
    """A result baked into the picture: its edits (already made when pushed, or made by
    their first ``redo``) as one step, and ``on_change(applied)`` after each undo/redo so
    the result's "applied" follows the undo stack."""

    def __init__(
        self, text: str, children: list[QUndoCommand], on_change: Callable[[bool], None]
    ) -> None:
        super().__init__(text)
        self.edits = children
        self.on_change = on_change

    def redo(self) -> None:
        for c in self.edits:
            c.redo()
        self.on_change(True)

    def undo(self) -> None:
        for c in reversed(self.edits):
            c.undo()
        self.on_change(False)
