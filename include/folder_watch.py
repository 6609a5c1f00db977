"""Watch a drop folder at a cost that does not grow with what it already holds (no Airflow imports: the
triggerer and the benchmark use it).

The folder keeps every file it ever received, so listing it all and reading the ledger's whole item list
at every poll costs more each day. Instead a poll looks only past a **watermark**, a file name saved in
the ledger (``include.ledger.folder_mark``):

- **The watermark** is the greatest name such that every visible file named up to it was received
  (the ledger has an item entry for its name, size and mtime) or is over the size limit. A poll lists
  only the files named after it (:func:`include.sources.list_folder` with ``after``: S3
  ``ListObjectsV2`` with ``StartAfter``; on a local disk a ``stat`` of the folder, a scan of its names
  only when it changed), looks each settled one up in the ledger (one small read each, never the whole
  item list), and moves the watermark past the received ones, in name order. It is saved only when it
  moves, so an idle poll writes nothing.
- **A full listing** every ``full_every`` seconds (the setting ``crawl_full_listing_seconds``, and the
  first poll ever) lists the whole folder and reads the ledger's item list once, as every poll did
  before. It finds the late writers the watermark cannot see: a file whose name sorts before the
  watermark (a writer whose names do not grow with time, a slow rename) or one rewritten in place. The
  watermark then moves back to just before the first such file, so the next polls see it.

The watermark decides only where to look, never whether a file was received: every file offered is
checked against the ledger, and landing (``include.ingest``) is unchanged, so exactly-once is what it
was. A wrong or stale watermark (a torn entry, two watchers writing it) can delay a file until the next
full listing, never land it twice. Writers that name files by time (``iris-<UTC time>-<seed>.csv``, as
``scripts/publish.py --drop`` does) are seen at once; others wait up to ``full_every`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from include import ledger, sources

BULK_LOOKUPS = 100


class FolderWatch:
    """The watermark of the drop folder ``url`` and the cache one watcher (one trigger) keeps between
    its polls. Its methods do blocking I/O: call them from a thread."""

    def __init__(self, url: str, root: str, *, full_every: float, max_bytes: int) -> None:
        self.url = url
        self.root = root
        self.full_every = full_every
        self.max_bytes = max_bytes
        self.after: str | None = None  # None until read from the ledger
        self.full_listing_at = 0.0
        self.full = False  # whether the last listing was a full one
        self._listed_at = 0.0
        self._received: set[str] = set()  # item keys known to be in the ledger: it only grows
        self._dir = sources.DirCache()

    def listing(self) -> list[sources.FileItem]:
        """The files to consider now: those named after the watermark, or all of them when a full
        listing is due."""
        self._read_mark()
        self._listed_at = time.time()
        self.full = self._listed_at - self.full_listing_at >= self.full_every
        if self.full:
            return sources.list_folder(self.url)
        return sources.list_folder(self.url, after=self.after, cache=self._dir)

    def full_listing_due(self) -> bool:
        """Whether the next :meth:`listing` lists the whole folder."""
        self._read_mark()
        return time.time() - self.full_listing_at >= self.full_every

    def _read_mark(self) -> None:
        if self.after is None:
            mark = ledger.folder_mark(self.root, self.url) or {}
            self.after = str(mark.get("after", ""))
            self.full_listing_at = float(mark.get("full_listing_at", 0.0))

    def unreceived(self, ready: Iterable[sources.FileItem]) -> list[sources.FileItem]:
        """The ``ready`` files the ledger has no entry for. Each one not known yet is looked up on its
        own; after a full listing, or when more than ``BULK_LOOKUPS`` are unknown (the watermark moved
        back far), the ledger's item list is read once instead."""
        unknown = [item for item in ready if _key(item) not in self._received]
        if self.full or len(unknown) > BULK_LOOKUPS:
            self._received |= ledger.received_items(self.root)
        else:
            self._received.update(_key(i) for i in unknown if ledger.item(self.root, i.url, i.validators))
        return [item for item in unknown if _key(item) not in self._received]

    def advance(self, listing: list[sources.FileItem]) -> None:
        """Move the watermark past the listed files, in name order, up to the first one not known to be
        received (nor over the size limit), and save it if it moved or after a full listing."""
        after = "" if self.full else self.after or ""
        for item in sorted(listing, key=lambda i: _name(i.url)):
            if item.size <= self.max_bytes and _key(item) not in self._received:
                break
            after = _name(item.url)
        if self.full:
            self.full_listing_at = self._listed_at
        if after != self.after or self.full:
            self.after = after
            ledger.save_folder_mark(self.root, self.url, after, self.full_listing_at)


def _key(item: sources.FileItem) -> str:
    return ledger.item_key(item.url, item.validators)


def _name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]
