"""How much of a batch is in memory at once: landing, validation and features stream a batch in chunks.

A chunk is at most ``cells`` values (rows x columns), so a wide batch gets fewer rows per chunk and
memory stays about the same; landing also parses the CSV ``csv_block_bytes`` at a time (and pyarrow
reads up to 32 such blocks ahead). Peak memory
then depends on these two sizes, not on the batch's row count (measured in ``bench/etl_scale.py``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chunking:
    """The chunk sizes of one streaming pass (tests use tiny ones to cross many chunk boundaries)."""

    cells: int = 1 << 20  # about 8 MB of numbers
    # pyarrow's streaming CSV reader reads up to 32 blocks ahead on its I/O thread: 32 MB at 1 MB.
    csv_block_bytes: int = 1 << 20

    def rows(self, columns: int) -> int:
        """Rows per chunk for a table of ``columns`` columns (at least one row)."""
        return max(1, self.cells // max(1, columns))


DEFAULT = Chunking()
