"""Who and what is on screen: patient, study and series, and the DICOM tag browser with search."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QLabel, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from medae.errors import MedaeError
from medae.geometry import obliquity_deg
from medae.gui.facts_tree import FactsTree
from medae.viewer.session import ViewerSession
from medae.viewer.tags import TagRow, dicom_date, filter_rows, read_tags

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
            return dicom_date(text) if key.endswith("_date") else value
    return None


def _orientation(volume) -> str:
    # An oblique grid's code is only its nearest axes; the tilt tells a reader the letters are approximate.
    tilt = obliquity_deg(volume.affine)
    return f"{volume.orientation} (oblique by {tilt:.0f}\u00b0)" if tilt >= 1.0 else volume.orientation


class StudyPanel(QWidget):
    """Patient / study / series facts of the scan on screen."""

    def __init__(self, session: ViewerSession, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.tree = FactsTree()
        self.tree.setAccessibleName("Study, series and patient facts")
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
                    ("Orientation", _orientation(v)),
                    ("Source", Path(v.source).name if v.source else ""),
                ]
                if v.meta.get("part_label"):  # one part of a split DICOM series
                    rows.insert(1, ("Part", str(v.meta["part_label"])))
                if "volume_index" in v.meta:  # one volume of a 4D file
                    rows.insert(1, ("Volume", f"{v.meta['volume_index'] + 1} of {v.meta['volumes']}"))
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
    """The DICOM header of the slice at the crosshair (one file per slice) or of the series' file, searchable."""

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
        self.tree.setAccessibleName("DICOM tags")
        self.tree.setObjectName("tags")
        # Keyword and value first: the dock is narrow, and they are what a reader looks for.
        self.tree.setHeaderLabels(["Keyword", "Value", "Tag", "VR"])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.search)
        lay.addWidget(self.note)
        lay.addWidget(self.tree)
        self.search.textChanged.connect(self.apply_filter)
        self._shown: tuple | None = None  # (volume, file index) whose header is listed
        session.image_changed.connect(self.refresh)
        session.cursor_changed.connect(self._follow_cursor)
        self.refresh()

    def _file_index(self) -> int:
        # A series of single-frame files holds one file per slice (in the volume's k order): the header
        # shown is that of the slice at the crosshair, as a reader scrolling a series expects.
        v = self.session.volume
        files = v.meta.get("source_files") or []
        if len(files) > 1 and "frame_numbers" not in v.meta and len(files) == v.shape[2]:
            return self.session.image.grid.to_source(self.session.cursor)[2]
        return 0

    def _follow_cursor(self) -> None:
        # Read only when on screen: scrolling with the panel hidden costs nothing; showEvent catches up.
        if self.isVisible() and self.session.volume is not None:
            if self._shown != (id(self.session.volume), self._file_index()):
                self.refresh()

    def showEvent(self, event) -> None:  # noqa: D102 (Qt override)
        super().showEvent(event)
        self._follow_cursor()

    def refresh(self) -> None:
        """Reads the header of the scan on screen (DICOM only): the file of the slice at the crosshair."""
        self.rows = []
        v = self.session.volume
        files = (v.meta.get("source_files") or []) if v is not None else []
        if v is None:
            self._shown = None
            self.note.setText("")
        elif not files:
            self._shown = None
            self.note.setText("No DICOM header: this scan was not read from DICOM files.")
        else:
            n = self._file_index()
            self._shown = (id(v), n)
            try:
                self.rows = read_tags(files[n])
                where = f"slice {n + 1} of {len(files)}, at the crosshair" if len(files) > 1 else "the series' file"
                self.note.setText(f"Header of {Path(files[n]).name} ({where})")
                self.note.setToolTip(str(files[n]))
            except MedaeError as exc:
                self.note.setText(str(exc))
        # A reader comparing one tag across slices keeps their place in the list.
        scroll = self.tree.verticalScrollBar().value()
        self.apply_filter(self.search.text())
        self.tree.verticalScrollBar().setValue(scroll)

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
