"""What earlier runs left in an output folder: which series each result folder is, and which inputs are gone.

A resumed run gives each series the folder an earlier run wrote it to, also when its files have moved (a
study folder renamed, a series moved into a sub-folder, copied elsewhere and the original deleted), so that
one series never has two folders. A folder whose input is no longer found is listed in the run's table and
left as it is: medae removes nothing it cannot tell is no longer wanted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medae.batch.items import BatchItem, content_digest, unique_names
from medae.batch.table import Row
from medae.io.deid import path_token, site_key_id

#: The status of a row for an earlier result whose input is no longer under the studies folder.
INPUT_GONE = "input not found"

_TOKEN = re.compile(r"path-[0-9a-f]{24}")


@dataclass
class Earlier:
    """A result (or error) an earlier run left in one sub-folder of the output folder.

    Attributes:
        name: The sub-folder's name.
        where: Where its input was, as the run recorded it (a path, or without ``keep_phi`` its token).
        identity: The input's identity in the run's key, as JSON (None for an error found before analysis).
        content: The sha256 of the input's bytes (None when not recorded).
        report: Its ``report.json`` (None for an error).
        error: Its ``error.json``'s message ("" for a result).
        site: The id of the pseudonym key its ``where`` was made under (None when not recorded).
    """

    name: str
    where: str
    identity: str | None
    content: str | None
    report: dict | None
    error: str = ""
    site: str | None = None

    def placed(self) -> bool:
        """Whether its input's place can be compared with this run's (a token made under this run's key)."""
        return not _TOKEN.fullmatch(self.where) or self.site == site_key_id()

    def row(self) -> Row:
        """Its row in the run's table: kept, and said to be without its input."""
        shown = "" if _TOKEN.fullmatch(self.where) else self.where  # a token names no place anyone can find
        source = (self.report or {}).get("input") if isinstance(self.report, dict) else None
        source = source if isinstance(source, dict) else {}
        row = Row(self.name, shown, "", str(source.get("modality") or ""), str(source.get("source") or ""), INPUT_GONE)
        files = (self.report or {}).get("files")
        row.summary = str(files.get("summary") or "") if isinstance(files, dict) else ""
        what = "result" if self.report is not None else "record"
        row.error = (
            f"the input of this earlier {what} is no longer found under the studies folder (deleted, or moved with "
            "other content); its folder is kept as it was. Delete the folder if it is no longer needed."
        )
        return row


def identity(item: BatchItem, keep_phi: bool) -> dict[str, Any]:
    """The input's identity as report.json keeps it: a file's path, without ``keep_phi``, as its token."""
    ident = dict(item.identity)
    if not keep_phi and ident.get("series") == item.where:
        ident["series"] = path_token(item.where)
    return ident


def subfolders(out: Path) -> list[Path]:
    """The sub-folders of ``out`` (not hidden ones), or none when it cannot be listed."""
    try:
        return [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []


def keep_earlier_names(items: list[BatchItem], out: Path) -> list[Earlier]:
    """Gives each series the folder an earlier run in ``out`` wrote it to, the others names free of those.

    Names are unique by a counter in the order of the items, so a new scan of the same name sorted before an
    older one would take its folder: the older result would be redone under another name, and the new scan's
    folder would first hold the older scan's files. A folder is matched by the series and where it was found;
    by the series alone (a study folder renamed) only when no present item was found where it says; and,
    when its files moved and changed their times (copied, then the original deleted) or a file's path is its
    identity, by the digest of its bytes, again only when its place is gone; last, a DICOM series by its UID.

    Returns:
        The earlier folders whose input is no longer found: no series takes them.
    """
    earlier = [e for e in (_earlier(folder) for folder in subfolders(out)) if e is not None]
    if not earlier:
        return []
    # Where each item is, as a report names it: its path, or (de-identified) its token; each made once.
    places = [{item.where, path_token(item.where)} for item in items]
    here = set().union(*places)
    kept: dict[int, str] = {}
    for exact in (True, False):
        for i, item in enumerate(items):
            if i in kept or item.error is not None:
                continue
            identities = {json.dumps(identity(item, keep), sort_keys=True) for keep in (True, False)}
            for entry in earlier:
                if entry.identity in identities and (entry.where in places[i] if exact else entry.where not in here):
                    kept[i] = entry.name
                    earlier.remove(entry)
                    break
    # Under another pseudonym key no token is this run's: where those inputs are now cannot be told.
    gone = [e for e in earlier if e.where not in here and e.placed()]
    _match_moved(items, [e for e in gone if e.content], kept)
    gone = [e for e in gone if e.name not in kept.values()]
    rest = [i for i in range(len(items)) if i not in kept]
    taken = [*kept.values(), *(e.name for e in gone)]
    # Counters as ``unique_names`` gives them, but past every name kept (folders of other series' results).
    fresh = unique_names([*taken, *(items[i].name for i in rest)])[len(taken) :]
    for i, name in zip(rest, fresh, strict=True):
        items[i].name = name
    for i, name in kept.items():
        items[i].name = name
    # Also a series gone from a folder that still holds others (one of two of the same name): no series
    # takes its folder, which would otherwise stand beside the table unexplained.
    names = {item.name.lower() for item in items}
    return [e for e in earlier if e.name.lower() not in names]


def forget_errors(out: Path, gone: list[Earlier]) -> list[Earlier]:
    """Removes the folders of ``gone`` that hold nothing but medae's error record; returns the others.

    Why an input that is no longer there could not be analysed is of no use (an earlier version's row per
    unreadable file, now one per folder, would otherwise stay listed for ever); a result is kept.
    """
    left = []
    for entry in gone:
        folder = out / entry.name
        try:
            if entry.report is None and {p.name for p in folder.iterdir()} == {"error.json"}:
                (folder / "error.json").unlink()
                folder.rmdir()
                continue
        except OSError:
            pass
        left.append(entry)
    return left


def _match_moved(items: list[BatchItem], candidates: list[Earlier], kept: dict[int, str]) -> None:
    """Matches folders whose input's place is gone to unmatched items holding the same bytes (or series)."""
    for i, item in enumerate(items):
        if not candidates:
            return
        if i in kept or item.error is not None:
            continue
        # Only an input that could be the same is read: a DICOM series by its UID, a file by its size.
        ident = item.identity
        same = [e for e in candidates if _could_be(json.loads(e.identity or "{}"), ident)]
        if not same:
            continue
        digest = content_digest(item)
        for entry in same:
            if digest is not None and entry.content == digest:
                kept[i] = entry.name
                candidates.remove(entry)
                break
    # A DICOM series moved and changed meanwhile (slices added by a transfer that had not finished): the
    # same series by its UID, whose result is made again in its folder rather than listed as gone.
    for i, item in enumerate(items):
        if i in kept or item.error is not None or "files" not in item.identity:
            continue
        entry = next((e for e in candidates if _could_be(json.loads(e.identity or "{}"), item.identity)), None)
        if entry is not None:
            kept[i] = entry.name
            candidates.remove(entry)


def _could_be(stored: dict, ident: dict) -> bool:
    if "files" in ident:  # a DICOM series: its UID's digest
        return stored.get("series") == ident.get("series")
    return stored.get("bytes") == ident.get("bytes")


def _earlier(folder: Path) -> Earlier | None:
    """The result or error an earlier run left in ``folder`` (None when neither, or not one of a batch)."""
    try:
        report = json.loads((folder / "report.json").read_text())
    except (OSError, ValueError):
        report = None
    batch = report.get("batch") if isinstance(report, dict) else None
    if isinstance(batch, dict):
        key, where = batch.get("key"), batch.get("input")
        if isinstance(key, dict) and "input" in key and isinstance(where, str):
            content = batch.get("content_sha256")
            ident = json.dumps(key["input"], sort_keys=True)
            content = content if isinstance(content, str) else None
            return Earlier(folder.name, where, ident, content, report, site=str(key.get("pseudonym_key") or ""))
    try:
        record = json.loads((folder / "error.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("input"), str):
        return None
    key, content = record.get("key"), record.get("content_sha256")
    ident = json.dumps(key["input"], sort_keys=True) if isinstance(key, dict) and "input" in key else None
    content = content if isinstance(content, str) else None
    site = key.get("pseudonym_key", "") if isinstance(key, dict) else record.get("pseudonym_key")
    return Earlier(folder.name, record["input"], ident, content, None, str(record.get("error") or ""), site)
