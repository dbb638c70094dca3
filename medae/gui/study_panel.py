"""Who and what is on screen: patient, study and series, and the DICOM tag browser with search."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QLabel, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from medae.errors import MedaeError
from medae.gui.facts_tree import FactsTree
from medae.viewer.session import ViewerSession
from medae.viewer.tags import TagRow, filter_rows, read_tags

_PATIENT = (
    ("patient_name", "Name"),
    ("patient_id", "ID"),
    ("patient_birth_date", "Birth date"),
    ("patient_sex", "Sex"),
    ("patient_age", "Age"),
)
_STUDY = (
    ("study_date", "Date"),
    ("study_description", "Description"),
    ("accession_number", "Accession"),
    ("study_uid", "Study UID"),
    ("institution_name", "Institution"),
)
_SERIES = (
    ("series_description", "Description"),
    ("series_number", "Number"),
    ("body_part", "Body part"),
    ("manufacturer", "Manufacturer"),
    ("series_uid", "Series UID"),
)


def _lookup(volume, key: str):
    for source in (volume.phi, volume.meta):
        if source.get(key) not in (None, ""):
            value = source[key]
            text = str(value)
            if key.endswith("_date") and len(text) == 8 and text.isdigit():  # DICOM DA: YYYYMMDD
                return f"{text[:4]}-{text[4:6]}-{text[6:]}"
            return value
    return None


class StudyPanel(QWidget):
    """Patient / study / series facts of the scan on screen."""

    def __init__(self, session: ViewerSession, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.tree = FactsTree()
        self.tree.setObjectName("study")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.tree)
        session.image_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Rebuilds the tree from the volume's metadata."""
        self.tree.clear()
        v = self.session.volume
        if v is None:
            return
        sections = [("Patient", _PATIENT), ("Study", _STUDY), ("Series", _SERIES)]
        for title, keys in sections:
            top = QTreeWidgetItem([title, ""])
            font = top.font(0)
            font.setBold(True)
            top.setFont(0, font)
            self.tree.addTopLevelItem(top)
            top.setFirstColumnSpanned(True)
            for key, label in keys:
                value = _lookup(v, key)
                if value is not None:
                    item = QTreeWidgetItem([label, str(value)])
                    item.setToolTip(0, str(value))
                    item.setToolTip(1, str(value))
                    top.addChild(item)
            if title == "Series":
                sp = " x ".join(f"{s:.3g}" for s in v.spacing)
                rows = [
                    ("Modality", v.modality),
                    ("Voxels", " x ".join(map(str, v.shape))),
                    ("Spacing (mm)", sp),
                    ("Orientation", v.orientation),
                    ("Source", Path(v.source).name if v.source else ""),
                ]
                if "volume_index" in v.meta:  # one volume of a 4D file
                    rows.insert(1, ("Volume", f"{v.meta['volume_index']} of {v.meta['volumes']} (from 0)"))
                for label, value in rows:
                    item = QTreeWidgetItem([label, str(value)])
                    tip = v.source if label == "Source" and v.source else str(value)
                    item.setToolTip(0, tip)
                    item.setToolTip(1, tip)
                    top.addChild(item)
            if top.childCount() == 0:
                empty = QTreeWidgetItem(["(not in file)", ""])
                top.addChild(empty)
                empty.setFirstColumnSpanned(True)
            top.setExpanded(True)
        self.tree.fit_columns()


class TagBrowser(QWidget):
    """The DICOM header of the series' first file, searchable by tag, keyword or value."""

    def __init__(self, session: ViewerSession, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.rows: list[TagRow] = []
        self.search = QLineEdit()
        self.search.setObjectName("tagSearch")
        self.search.setPlaceholderText("Search tags (keyword, (0010,0010) or value)")
        self.search.setClearButtonEnabled(True)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.tree = QTreeWidget()
        self.tree.setObjectName("tags")
        # Keyword and value first: the dock is narrow, and they are what a reader looks for.
        self.tree.setHeaderLabels(["Keyword", "Value", "Tag", "VR"])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.search)
        lay.addWidget(self.note)
        lay.addWidget(self.tree)
        self.search.textChanged.connect(self.apply_filter)
        session.image_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Reads the header of the scan on screen (DICOM only)."""
        self.rows = []
        v = self.session.volume
        files = (v.meta.get("source_files") or []) if v is not None else []
        if v is None:
            self.note.setText("")
        elif not files:
            self.note.setText("No DICOM header: this scan was not read from DICOM files.")
        else:
            try:
                self.rows = read_tags(files[0])
                self.note.setText(f"Header of {Path(files[0]).name} (first of {len(files)} files)")
                self.note.setToolTip(str(files[0]))
            except MedaeError as exc:
                self.note.setText(str(exc))
        self.apply_filter(self.search.text())

    def apply_filter(self, text: str) -> None:
        """Shows the rows that match ``text`` (and the sequences that hold them)."""
        self.tree.clear()
        items: dict[int, QTreeWidgetItem] = {}
        for n in filter_rows(self.rows, text):
            row = self.rows[n]
            item = QTreeWidgetItem([row.keyword, row.value, row.tag, row.vr])
            item.setToolTip(1, row.value)
            parent = items.get(row.parent)
            if parent is None:
                self.tree.addTopLevelItem(item)
            else:
                parent.addChild(item)
            items[n] = item
        if text:
            self.tree.expandAll()
        self.tree.resizeColumnToContents(0)

    def visible_keywords(self) -> list[str]:
        """Keywords currently listed (top level and nested), for tests and accessibility."""
        out: list[str] = []

        def walk(item: QTreeWidgetItem) -> None:
            out.append(item.text(0))
            for i in range(item.childCount()):
                walk(item.child(i))

        for i in range(self.tree.topLevelItemCount()):
            walk(self.tree.topLevelItem(i))
        return out
