"""The master catalog as the refresh sees it: every master's id and the text that is embedded.

Source: the generated catalog (``catalog.npz`` of ``hotpath catalog generate``), whose titles are
the category's vocabulary plus a variant; the text embedded is the title as the catalog gives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hotpath.errors import NotFound

__all__ = ["MasterTitles", "load_titles"]


@dataclass
class MasterTitles:
    ids: list[str]
    titles: list[str]
    categories: list[str]

    def __len__(self) -> int:
        return len(self.ids)


def load_titles(path: Path) -> MasterTitles:
    from hotpath.recs.catalog import Catalog, master_uuid

    f = path / "catalog.npz" if path.is_dir() else path
    if not f.is_file():
        raise NotFound(f"no master catalog at {f}", hint="run `hotpath catalog generate` first")
    cat = Catalog.load(f)
    n = cat.n_masters
    leaf = cat.master_leaf.tolist()
    return MasterTitles(
        ids=[master_uuid(i) for i in range(n)],
        titles=[cat.title(i) for i in range(n)],
        categories=[cat.cat_ids[c] for c in leaf],
    )
