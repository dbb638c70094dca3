"""Opening scans in the viewer: scan a path, pick a series (and a volume of a 4D file), load it in a worker."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QInputDialog, QLabel

from medae.gui import menus
from medae.gui.dialogs import SeriesPicker, short_name
from medae.gui.settings import add_recent
from medae.gui.workers import Job


class OpeningMixin:
    """The open flow of ``MainWindow``: file or folder -> series picker -> volume picker -> worker -> screen.

    Needs the window's ``run_job`` and ``_cancel_named`` (``JobsMixin``), ``session``, ``statusBar`` and
    ``_analyze_on_screen``.
    """

    def _init_opening(self) -> None:
        # Each open request gets a number; a load that finishes after a newer request is dropped, so the
        # scan on screen is always the one the user asked for last.
        self._open_seq = 0
        # The request whose scan is on screen: its loading thread may run a moment longer, past the hand-over.
        self._shown_seq = 0
        self._four_d: tuple[str, object] | None = None  # (path, series) of the 4D file whose volume is shown
        # (path, parts, index): a DICOM series split into parts (echoes, time points, b-values) that [ and ]
        # step through, and which of them is on screen.
        self._parts: tuple[str, list, int] | None = None
        self._step_target: int | None = None  # the volume or part a step is loading (keys pressed fast add up)
        self._analyze_after_open: tuple[int, bool] | None = None  # (open request, force) asked for while loading
        self.series_picker: SeriesPicker | None = None
        self._scanned_infos: list = []  # the series the last scan of a path found
        self.volume_picker: QInputDialog | None = None

    def open_path(self, path: str | Path) -> Job:
        """Opens a file or folder: scans it, asks for a series if there are several, loads it."""
        from medae.codec import is_compressed_study
        from medae.io import scan

        path = str(path)
        self._cancel_named("scan", "load", "thumbnails")  # superseded by this request
        self._open_seq += 1
        seq = self._open_seq
        if is_compressed_study(path):
            return self._open_compressed(path, seq)
        return self.run_job(
            "scan",
            lambda progress, cancel: scan(path, progress=progress, cancel=cancel),
            lambda infos: self._scanned(path, infos, seq) if seq == self._open_seq else None,
            f"reading {Path(path).name}",
            on_failed=lambda _exc: self._drop_pending_analysis(seq),
        )

    def _open_compressed(self, path: str, seq: int) -> Job:
        # A compressed study is one series: decoded in a worker (a latent one loads the compression model).
        from medae.codec import read_study

        def done(loaded) -> None:
            # A lossy file's own words (near-lossless bound, latent preview) are among the volume's warnings,
            # which the banner above the views shows.
            if seq == self._open_seq:
                self._four_d = self._parts = None
                self.show_volume(*loaded, path=path)

        return self.run_job(
            "load",
            lambda progress, cancel: _with_layer(read_study(path)),
            done,
            f"decoding {Path(path).name}",
            on_failed=lambda _exc: self._drop_pending_analysis(seq),
        )

    def _drop_pending_analysis(self, seq: int) -> None:
        # The scan an Analyze was waiting for will not come (failed, cancelled, or its picker closed).
        if self._analyze_after_open is not None and self._analyze_after_open[0] == seq:
            self._analyze_after_open = None
            self.statusBar().showMessage("The scan was not opened, so it was not analysed.", 5000)

    def _split_parts(self, info) -> list:
        # The parts of the split DICOM series ``info`` belongs to, in their own order (part 1, 2, ... as the
        # split numbered them by echo, time point or b-value); [] for a whole series.
        series = (info.extra or {}).get("series_uid")
        parts = [i for i in self._scanned_infos if series and (i.extra or {}).get("series_uid") == series]
        if len(parts) < 2 or info not in parts or any(p.uid == series for p in parts):
            return []
        return sorted(parts, key=lambda p: int(p.uid.rsplit(".", 1)[-1]))

    def _scanned(self, path: str, infos: list, seq: int) -> None:
        self._scanned_infos = list(infos)
        if len(infos) == 1:
            self.choose_volume(path, infos[0])
            return
        picker = SeriesPicker(infos, self)
        picker.accepted.connect(lambda: self.choose_volume(path, picker.selected()))
        picker.rejected.connect(lambda: self._drop_pending_analysis(seq))
        self.series_picker = picker
        picker.open()

        def thumbs(progress, cancel):
            from medae.viewer.thumbnails import thumbnail

            return [thumbnail(info) for info in infos]

        def show(images: list) -> None:
            for row, img in enumerate(images):
                picker.set_thumbnail(row, img)

        self.run_job("thumbnails", thumbs, show, "making previews")

    def can_step_volumes(self) -> bool:
        """True when the scan on screen is one of several volumes that [ and ] step through."""
        v = self.session.volume
        return v is not None and (("volume_index" in v.meta and self._four_d is not None) or self._parts is not None)

    def step_volume(self, step: int) -> Job | None:
        """Shows the next (``step`` 1) or previous (-1) volume, keeping the view.

        The volumes of the 4D file on screen, or the parts of the DICOM series on screen that was split by
        echo, time point, b-value or direction.
        """
        v = self.session.volume
        end = "last" if step > 0 else "first"
        if v is not None and "volume_index" in v.meta and self._four_d is not None:
            here = self._step_target if self._step_target is not None else int(v.meta["volume_index"])
            n, count = here + step, int(v.meta["volumes"])
            if not 0 <= n < count:
                self.statusBar().showMessage(f"Volume {here + 1} is the {end}.", 3000)
                return None
            self._start_step(n)
            return self.load_series(*self._four_d, volume_index=n, keep_view=True)
        if v is not None and self._parts is not None:
            path, parts, index = self._parts
            here = self._step_target if self._step_target is not None else index
            if not 0 <= here + step < len(parts):
                self.statusBar().showMessage(f"Part {here + 1} of {len(parts)} is the {end}.", 3000)
                return None
            self._start_step(here + step)
            return self.load_series(path, parts[here + step], keep_view=True)
        self.statusBar().showMessage(
            "The scan on screen is not one of several volumes (a 4D file or a split DICOM series).", 4000
        )
        return None

    def _start_step(self, target: int) -> None:
        # The load of an earlier step, not yet on screen, gives way; the next press steps on from here.
        self._cancel_named("load")
        self._open_seq += 1
        self._step_target = target

    def choose_volume(self, path: str, info) -> None:
        """Loads a series; a 4D file (a time series, several contrasts) first asks which of its volumes."""
        n = int(info.extra.get("n_volumes", 1))
        if n <= 1:
            self.load_series(path, info)
            return
        dlg = QInputDialog(self)
        dlg.setWindowTitle("Choose a volume")
        dlg.setLabelText(
            f"{short_name(info.description)} holds {n} volumes (a time series or several contrasts). "
            f"Which one to open (1 to {n})? Once open, [ and ] step to the previous and next."
        )
        for label in dlg.findChildren(QLabel):  # wrapped between words, within a small or scaled screen
            label.setWordWrap(True)
        dlg.setInputMode(QInputDialog.InputMode.IntInput)
        dlg.setIntRange(1, n)
        dlg.setIntValue(1)
        dlg.accepted.connect(lambda: self.load_series(path, info, volume_index=dlg.intValue() - 1))
        self.volume_picker = dlg
        dlg.open()

    def load_series(self, path: str, info, volume_index: int | None = None, keep_view: bool = False) -> Job:
        """Loads one series of ``path`` (one volume of a 4D file) in a worker and shows it.

        Args:
            path: The file or folder.
            info: The series' ``SeriesInfo`` from the scan of ``path``.
            volume_index: The volume of a 4D file.
            keep_view: Keep cursor, window and zoom (stepping through the volumes of the file on screen).
        """
        from medae.io import load

        def work(progress, cancel):
            return _with_layer(load(path, series=info.uid, volume_index=volume_index, progress=progress, cancel=cancel))

        def done(loaded) -> None:
            if seq == self._open_seq:
                self._step_target = None
                self._four_d = (path, info) if volume_index is not None else None
                parts = self._split_parts(info)
                self._parts = (path, parts, parts.index(info)) if parts else None
                self.show_volume(*loaded, path=path, keep_view=keep_view)

        seq = self._open_seq
        what = info.description if volume_index is None else f"{info.description}, volume {volume_index + 1}"

        def failed(_exc) -> None:
            if seq == self._open_seq:
                self._step_target = None
            self._drop_pending_analysis(seq)

        return self.run_job("load", work, done, f"loading {what}", on_failed=failed)

    def show_volume(self, volume, layer=None, path: str | None = None, keep_view: bool = False) -> None:
        """Puts a loaded volume on screen; an analysis still running on the previous scan stops.

        Args:
            volume: The scan.
            layer: Its ``ImageLayer``, made in the loading worker (None: made here).
            path: What was opened, for the recent files.
            keep_view: Keep cursor, window and zoom (another volume of the file on screen).
        """
        self._cancel_named("analyze", "findings")
        self._shown_seq = self._open_seq
        self.session.open(volume, keep_view=keep_view, layer=layer)
        if path:
            add_recent(path)
            menus.refresh_recent(self)
        note, self._drop_note = self._drop_note, None
        if note:  # said once the scan is on screen: the jobs before clear the status bar
            self.statusBar().showMessage(note, 10000)
        pending, self._analyze_after_open = self._analyze_after_open, None
        if pending is not None and pending[0] == self._open_seq:
            self._analyze_on_screen(force=pending[1])


def _with_layer(volume) -> tuple:
    """The volume and its display layer, coded in the loading worker rather than on the window's thread."""
    from medae.viewer.display import ImageLayer

    return volume, ImageLayer(volume)
