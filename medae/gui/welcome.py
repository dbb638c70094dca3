"""What an empty window shows: how to open a scan, the samples, and recent files."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QPushButton, QVBoxLayout, QWidget

from medae.gui.settings import recent_files
from medae.viewer import samples


class Welcome(QWidget):
    """The start page."""

    def __init__(self, window) -> None:
        super().__init__()
        self.window_ = window
        self.setObjectName("welcome")
        title = QLabel(
            "<h1>medae</h1><p>Anomaly detection in MRI and CT with autoencoders trained on healthy "
            "scans.</p><p>Open a scan file (NIfTI, MGH, NRRD, MetaImage), a DICOM folder or a DICOMDIR: "
            "<b>File &gt; Open</b>, or drop it on this window.</p>"
        )
        title.setWordWrap(True)
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # Two short rows rather than one long one, so the window fits small screens.
        buttons, samples_row = QHBoxLayout(), QHBoxLayout()
        self.open_file = QPushButton("Open file...")
        self.open_folder = QPushButton("Open folder...")
        buttons.addStretch(1)
        for b in (self.open_file, self.open_folder):
            buttons.addWidget(b)
        buttons.addStretch(1)
        samples_row.addStretch(1)
        for label, name in (("Brain MRI sample", samples.BRAIN), ("Chest CT sample (synthetic)", samples.CT)):
            path = samples.samples_dir() / name
            if path.is_file():
                b = QPushButton(label)
                b.clicked.connect(lambda _c=False, p=path: window.open_path(p))
                samples_row.addWidget(b)
        samples_row.addStretch(1)
        self.recent = QListWidget()
        self.recent.setObjectName("recentList")
        self.recent.setMaximumWidth(700)
        self.recent.itemActivated.connect(lambda item: window.open_path(item.data(Qt.ItemDataRole.UserRole)))
        lay = QVBoxLayout(self)
        lay.addStretch(1)
        lay.addWidget(title)
        lay.addLayout(buttons)
        lay.addLayout(samples_row)
        self.recent_title = QLabel("<b>Recent</b>")
        self.recent_title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(self.recent_title)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.recent, 3)
        row.addStretch(1)
        lay.addLayout(row)
        lay.addStretch(2)
        self.refresh()

    def refresh(self) -> None:
        """Lists recent files."""
        from PySide6.QtWidgets import QListWidgetItem

        self.recent.clear()
        items = recent_files()
        for p in items:
            item = QListWidgetItem(f"{Path(p).name}    ({p})")
            item.setData(Qt.ItemDataRole.UserRole, p)
            self.recent.addItem(item)
        self.recent.setVisible(bool(items))
        self.recent_title.setVisible(bool(items))
