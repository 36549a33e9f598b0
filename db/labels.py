"""Known labels (and categories) for uploaded files: from folder names or from a CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol

from db.errors import LabelFileError
from db.models import KnownLabel

NORMAL_FOLDER = "good"
SPLIT_FOLDERS = ("train", "test")
MASK_FOLDER = "ground_truth"

_LABEL_WORDS = {
    "normal": KnownLabel.NORMAL.value,
    "good": KnownLabel.NORMAL.value,
    "ok": KnownLabel.NORMAL.value,
    "0": KnownLabel.NORMAL.value,
    "anomalous": KnownLabel.ANOMALOUS.value,
    "anomaly": KnownLabel.ANOMALOUS.value,
    "defect": KnownLabel.ANOMALOUS.value,
    "defective": KnownLabel.ANOMALOUS.value,
    "bad": KnownLabel.ANOMALOUS.value,
    "ng": KnownLabel.ANOMALOUS.value,
    "1": KnownLabel.ANOMALOUS.value,
}


@dataclass(frozen=True)
class LabelInfo:
    """What a label source says about one file."""

    label: str | None = None
    category: str | None = None
    defect_type: str | None = None
    skip_reason: str | None = None  # set when the file must not be ingested at all


class LabelSource(Protocol):
    """Anything that can label a file by its (relative) upload name."""

    def lookup(self, name: str) -> LabelInfo:
        """Label information for the file called `name`."""
        ...


def _parts(name: str) -> tuple[str, ...]:
    return tuple(p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", "/"))


class FolderLabels:
    """MVTec layout: `<category>/train|test/good/x.png` is normal, `<category>/test/<defect>/x.png`
    is anomalous with that defect; the category is the folder just above `train`/`test`.
    Files under `ground_truth/` (masks) are skipped."""

    def lookup(self, name: str) -> LabelInfo:
        """Label information derived from the folders in `name`."""
        folders = [p.lower() for p in _parts(name)[:-1]]
        original = list(_parts(name)[:-1])
        if MASK_FOLDER in folders:
            return LabelInfo(skip_reason="a ground-truth mask, not an image to learn or inspect")
        category: str | None = None
        split_at = next((i for i, f in enumerate(folders) if f in SPLIT_FOLDERS), None)
        if split_at is not None and split_at > 0:
            category = original[split_at - 1]
        if NORMAL_FOLDER in folders:
            return LabelInfo(KnownLabel.NORMAL.value, category)
        if split_at is not None and folders[split_at] == "test" and split_at + 1 < len(folders):
            defect = original[split_at + 1]
            return LabelInfo(KnownLabel.ANOMALOUS.value, category, defect)
        return LabelInfo(None, category)


LISTED_PROBLEMS = 20


class CsvLabels:
    """Labels from a CSV with rows `filename,label[,category]` (a header row is optional).

    Rows match the upload name exactly first, then by base name. Labels: normal/good/ok/0 or
    anomalous/anomaly/defect/bad/ng/1; an empty label leaves the file unlabelled. Lookups are
    remembered, so after an upload the rows no file matched and the files no row named can be
    reported (``unused_rows``, ``unlisted_files``).
    """

    def __init__(self, rows: dict[str, LabelInfo]) -> None:
        self._by_path = rows
        self._by_base: dict[str, str | None] = {}
        for path in rows:
            base = PurePosixPath(path).name
            # A base name shared by two rows is ambiguous: only exact paths match it.
            self._by_base[base] = None if base in self._by_base else path
        self._used: set[str] = set()
        self._unlisted: list[str] = []

    @classmethod
    def parse(cls, text: str | bytes) -> CsvLabels:
        """Parse CSV text; raises one `LabelFileError` naming every bad line."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise LabelFileError("the label CSV is not UTF-8 text; save it as UTF-8") from None
        rows: dict[str, LabelInfo] = {}
        problems: list[str] = []
        for line_no, record in enumerate(csv.reader(io.StringIO(text)), start=1):
            cells = [c.strip() for c in record]
            if not any(cells):
                continue
            if line_no == 1 and len(cells) >= 2 and cells[1].lower() == "label":
                continue
            if len(cells) < 2 or len(cells) > 3 or not cells[0]:
                problems.append(
                    f"line {line_no}: expected 'filename,label[,category]', "
                    f"got {','.join(record)!r}"
                )
                continue
            raw = cells[1].lower()
            if raw and raw not in _LABEL_WORDS:
                problems.append(
                    f"line {line_no}: unknown label {cells[1]!r}; use normal or anomalous"
                )
                continue
            key = "/".join(_parts(cells[0]))
            category = cells[2] if len(cells) == 3 and cells[2] else None
            rows[key] = LabelInfo(_LABEL_WORDS.get(raw), category)
        if problems:
            listed = "; ".join(problems[:LISTED_PROBLEMS])
            more = len(problems) - LISTED_PROBLEMS
            tail = f"; and {more} more" if more > 0 else ""
            raise LabelFileError(
                f"the label CSV has {len(problems)} bad line(s): {listed}{tail}. Fix them all, "
                "then upload again"
            )
        if not rows:
            raise LabelFileError("the label CSV has no rows; add 'filename,label' lines")
        return cls(rows)

    def lookup(self, name: str) -> LabelInfo:
        """The CSV row for `name` (exact path first, then base name); empty if none."""
        key = "/".join(_parts(name))
        path = key if key in self._by_path else self._by_base.get(PurePosixPath(key).name)
        if path is None:
            self._unlisted.append(name)
            return LabelInfo()
        self._used.add(path)
        return self._by_path[path]

    def unused_rows(self) -> list[str]:
        """The CSV's file names that no looked-up file matched, in CSV order."""
        return [path for path in self._by_path if path not in self._used]

    def unlisted_files(self) -> list[str]:
        """The looked-up files that no CSV row named, in upload order."""
        return list(self._unlisted)
