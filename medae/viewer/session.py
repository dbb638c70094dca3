"""What is on screen, without Qt: the scan, the analysis, window, cursor and overlay settings.

Setters validate, store, then emit a psygnal signal; Qt widgets connect to the signals and write
back through the setters, so views never own state. Everything a view draws comes from ``render``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from psygnal import Signal

from medae.viewer import compositing
from medae.viewer.bindings import MOUSE_SCHEMES
from medae.viewer.display import CanonicalGrid, HeatLayer, ImageLayer, Readout
from medae.viewer.planes import CONVENTIONS, PLANES, plane_spec
from medae.viewer.ruler import Measure
from medae.viewer.windowing import Window, default_window, percentile_window, preset_window, presets_for
from medae.volume import Volume

LAYOUTS: tuple[str, ...] = ("single", "1x3", "2x2")
LAYERS: tuple[str, ...] = ("input", "reconstruction", "residual")


@dataclass(frozen=True)
class ViewState:
    """Zoom and pan of one plane (shared by every view of that plane, so compare views stay linked).

    Attributes:
        zoom: Magnification relative to fitting the slice in the view.
        pan: Offset of the image centre from the view centre, in mm across and down the screen.
    """

    zoom: float = 1.0
    pan: tuple[float, float] = (0.0, 0.0)


class ViewerSession:
    """The state of one viewer window."""

    image_changed = Signal()
    result_changed = Signal()
    findings_changed = Signal()
    cursor_changed = Signal()
    window_changed = Signal()
    overlay_changed = Signal()
    display_changed = Signal()
    view_changed = Signal(str)

    def __init__(self) -> None:
        self.image: ImageLayer | None = None
        self.result: Any = None
        self.heat: HeatLayer | None = None
        self.extra_layers: dict[str, ImageLayer] = {}
        self._cursor: tuple[int, int, int] = (0, 0, 0)
        self._window = Window(0.5, 1.0)
        self._layer_windows: dict[str, Window] = {}
        self._invert = False
        self._style = compositing.OverlayStyle()
        # The threshold the reader chose for this scan, with the model and units it is meant in.
        self._chosen_threshold: tuple[str, str, str, float] | None = None
        self._heat_visible = True
        self._convention = "radiological"
        self._layout = "1x3"
        self._single_plane = "axial"
        self._compare = False
        self._mouse_scheme = "radiology"
        self._crosshair = True
        self._link_zoom = True
        self._views = {p: ViewState() for p in PLANES}
        self._gray_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._drag_scale: tuple[ImageLayer | None, float] = (None, 1.0)  # (the scan it was worked out for, scale)
        self._blend_cache: tuple[compositing.OverlayStyle, np.ndarray] | None = None
        self._mip_cache: tuple[tuple, np.ndarray] | None = None
        self.measure = Measure()

    # ----- the scan -------------------------------------------------------------------------
    def open(self, volume: Volume, keep_view: bool = False, layer: ImageLayer | None = None) -> None:
        """Shows a new scan; drops any analysis of the previous one.

        Args:
            volume: The scan.
            keep_view: Keep cursor, window, zoom and pan when the scan lies on the same grid as the one
                shown (another volume of the same 4D file), so stepping through volumes compares like with like.
            layer: ``ImageLayer(volume)`` made beforehand (in a worker: coding a large scan takes a second).
        """
        layer = layer if layer is not None and layer.volume is volume else ImageLayer(volume)
        grid = layer.grid
        old = self.image.grid if self.image is not None else None
        same = keep_view and old is not None and old.shape == grid.shape and np.allclose(old.affine, grid.affine)
        self.image = layer
        self._drag_scale = (None, 1.0)  # the previous scan's, whose arrays it would keep alive
        self.result, self.heat, self.extra_layers = None, None, {}
        self._chosen_threshold = None
        self._gray_cache.clear()
        if not same:
            self._cursor = tuple(s // 2 for s in self.image.grid.shape)  # type: ignore[assignment]
            self._window = default_window(self.image.values, volume.modality, volume.meta)
            self._views = {p: ViewState() for p in PLANES}
            self.measure.clear()  # rulers belong to the grid they were drawn on (kept for another volume of it)
        self._compare = False
        self.image_changed.emit()
        self.result_changed.emit()
        self.window_changed.emit()
        self.cursor_changed.emit()
        self.display_changed.emit()  # compare mode ended with the old scan; menus must show it

    @property
    def volume(self) -> Volume | None:
        """The scan on screen."""
        return self.image.volume if self.image else None

    @property
    def modality(self) -> str:
        """Modality of the scan on screen ("" when none)."""
        return self.image.volume.modality if self.image else ""

    @property
    def units(self) -> str:
        """Units of the scan's values: HU for CT, none otherwise."""
        return "HU" if self.modality.upper() == "CT" else ""

    @property
    def warnings(self) -> list[str]:
        """Everything the user should know: loading problems, then analysis warnings."""
        out = list(self.volume.warnings) if self.volume else []
        if self.result is not None:
            out.extend(w for w in getattr(self.result, "warnings", []) if w not in out)
        return out

    # ----- the analysis ---------------------------------------------------------------------
    def set_result(self, result: Any, layers: ResultLayers | None = None) -> None:
        """Shows an analysis of the scan on screen (``medae.analysis.AnalysisResult``).

        Args:
            result: The analysis.
            layers: ``prepare_result(result)`` made beforehand (in a worker: a large scan's layers take seconds).
        """
        if self.image is None:
            raise ValueError("open a scan before showing an analysis")
        if tuple(result.heatmap.shape) != self.image.volume.shape:
            raise ValueError("the analysis is not on the grid of the scan on screen")
        if layers is None or layers.result is not result:
            layers = prepare_result(result, self.image.grid)
        self.result = result
        self.heat = layers.heat
        self.extra_layers = dict(layers.extra)
        if layers.residual_window is not None:
            self._layer_windows["residual"] = layers.residual_window
        style = replace(layers.style, colormap=self._style.colormap, opacity=self._style.opacity)
        chosen = self._chosen_threshold
        if chosen is not None and chosen[:3] == _threshold_meaning(result):
            # The same scan analysed again by the same model (another device, or while the reader moved the
            # threshold): the threshold means the same, so the reader's choice stands over the model's default.
            style = replace(style, threshold=float(np.clip(chosen[3], style.vmin, style.vmax)))
        self._style = style
        self._heat_visible = True
        self._blend_cache = None
        self._mip_cache = None
        self._gray_cache.clear()
        self.result_changed.emit()
        self.overlay_changed.emit()

    def set_findings(self, result: Any) -> None:
        """Swaps in the same analysis with findings at another threshold (``AnalysisResult.at_threshold``).

        The heatmap, layers and overlay style stay as they are; only the findings and their labels change.
        """
        if self.result is None or result.heatmap is not self.result.heatmap:
            raise ValueError("these findings belong to another analysis than the one on screen")
        self.result = result
        self.findings_changed.emit()

    def clear_result(self) -> None:
        """Removes the analysis overlay."""
        self.result, self.heat, self.extra_layers = None, None, {}
        self._compare = False
        self.result_changed.emit()
        self.overlay_changed.emit()
        self.display_changed.emit()

    @property
    def findings(self) -> list:
        """Findings in the analysis's rank order (by excess over the threshold, see ``extract_findings``)."""
        if self.result is None:
            return []
        return sorted(self.result.findings, key=lambda f: int(f.label))

    def go_to_finding(self, rank: int) -> None:
        """Moves every view to a finding (0 = the highest ranked)."""
        found = self.findings
        if not found:
            return
        f = found[rank % len(found)]
        index = self.image.grid.to_canonical(_finding_voxel(f, self.result, self.image.volume))
        self.set_cursor(index)
        grid = self.image.grid

        def pan(plane: str, view: ViewState) -> tuple[float, float]:
            # A fitted slice shows the finding wherever it is; a magnified one is centred on it, or the
            # reader would be shown another place under the crosshair's promise.
            if view.zoom <= 1.0:
                return (0.0, 0.0)
            u, v = plane_spec(plane, self.convention).offset_mm(self._cursor, grid.shape, grid.spacing)
            return (-u, -v)

        self._views = {p: replace(v, pan=pan(p, v)) for p, v in self._views.items()}
        for p in PLANES:
            self.view_changed.emit(p)

    # ----- cursor ---------------------------------------------------------------------------
    @property
    def cursor(self) -> tuple[int, int, int]:
        """The crosshair, as a canonical voxel index."""
        return self._cursor

    def set_cursor(self, index) -> None:
        """Moves the crosshair (clamped into the grid)."""
        if self.image is None:
            return
        new = self.image.grid.clamp(index)
        if new != self._cursor:
            self._cursor = new
            self.cursor_changed.emit()

    def set_cursor_world(self, point) -> None:
        """Moves the crosshair to the voxel nearest a RAS+ world point."""
        if self.image is not None:
            self.set_cursor(self.image.grid.from_world(point))

    def move_slice(self, plane: str, step: int) -> None:
        """Steps the slice shown in ``plane`` by ``step`` (positive: superior/anterior/right)."""
        idx = list(self._cursor)
        idx[plane_spec(plane).normal] += int(step)
        self.set_cursor(idx)

    def slice_count(self, plane: str) -> int:
        """Slices in a plane."""
        return self.image.grid.shape[plane_spec(plane).normal] if self.image else 0

    def slice_label(self, plane: str) -> str:
        """Which slice a plane shows, in the file's own voxel numbering (as the read-out and other viewers).

        The views show the scan turned to RAS; counting their slices would give a file stored in another
        order (LPS, sagittal acquisitions) numbers that match neither the voxel read-out nor other tools.
        """
        if self.image is None:
            return ""
        grid = self.image.grid
        axis = grid.source_axis(plane_spec(plane).normal)
        index = grid.to_source(self._cursor)[axis]
        return f"slice {'ijk'[axis]}={index} (of {grid.source_shape[axis]})"

    # ----- window ---------------------------------------------------------------------------
    @property
    def window(self) -> Window:
        """The scan's display window."""
        return self._window

    def set_window(self, window: Window) -> None:
        """Sets the scan's display window."""
        if window != self._window:
            self._window = window
            self.window_changed.emit()

    def presets(self):
        """Window presets for the modality on screen."""
        return presets_for(self.modality or "MR")

    def apply_preset(self, number: int) -> bool:
        """Applies preset ``number`` (1-based, as the keys); False when there is no such preset."""
        presets = self.presets()
        if self.image is None or not 1 <= number <= len(presets):
            return False
        self.set_window(preset_window(presets[number - 1], self.image.values))
        return True

    def reset_window(self) -> None:
        """Back to the scan's own window (the file's, else the modality default)."""
        if self.image is not None:
            v = self.image.volume
            self.set_window(default_window(self.image.values, v.modality, v.meta))

    def window_drag_scale(self) -> float:
        """Scan units per pixel of window/level drag."""
        if self.units == "HU":
            return 2.0
        if self.image is None:
            return 1.0
        # Asked at every mouse move of a drag: worked out once per scan.
        layer, scale = self._drag_scale
        if layer is not self.image:
            scale = max(percentile_window(self.image.values, 0.5, 99.5).width / 400.0, 1e-6)
            self._drag_scale = (self.image, scale)
        return scale

    @property
    def invert(self) -> bool:
        """Negative grey scale."""
        return self._invert

    def set_invert(self, value: bool) -> None:
        """Sets negative grey scale."""
        if bool(value) != self._invert:
            self._invert = bool(value)
            self.window_changed.emit()

    # ----- overlay --------------------------------------------------------------------------
    @property
    def style(self) -> compositing.OverlayStyle:
        """How the heatmap is drawn."""
        return self._style

    def set_style(self, **changes: Any) -> None:
        """Changes overlay settings (colormap, opacity, threshold, fade); values are validated."""
        if "colormap" in changes:
            from medae.viewer import colormaps

            colormaps.lut(changes["colormap"])  # raises on an unknown name
        if "opacity" in changes:
            changes["opacity"] = float(np.clip(changes["opacity"], 0.0, 1.0))
        if "threshold" in changes:
            changes["threshold"] = float(np.clip(changes["threshold"], self._style.vmin, self._style.vmax))
            if self.result is not None and abs(changes["threshold"] - self._style.threshold) > 1e-12:
                self._chosen_threshold = (*_threshold_meaning(self.result), changes["threshold"])
        if "fade" in changes:
            changes["fade"] = max(0.0, float(changes["fade"]))
        new = replace(self._style, **changes)
        if new != self._style:
            self._style = new
            self.overlay_changed.emit()

    @property
    def heat_visible(self) -> bool:
        """Whether the heatmap is drawn."""
        return self._heat_visible

    def set_heat_visible(self, value: bool) -> None:
        """Shows or hides the heatmap."""
        if bool(value) != self._heat_visible:
            self._heat_visible = bool(value)
            self.overlay_changed.emit()

    # ----- display options ------------------------------------------------------------------
    def _set(self, name: str, value: Any, allowed: tuple | None = None) -> None:
        if allowed is not None and value not in allowed:
            raise ValueError(f"{name.strip('_')} must be one of {allowed}, got {value!r}")
        if getattr(self, name) != value:
            setattr(self, name, value)
            self.display_changed.emit()

    @property
    def convention(self) -> str:
        """Radiological (the patient's left on screen right) or neurological display."""
        return self._convention

    @convention.setter
    def convention(self, value: str) -> None:
        before = self._convention
        self._set("_convention", value, CONVENTIONS)
        for plane in PLANES:  # a mirrored view keeps the place looked at: its pan across mirrors too
            if plane_spec(plane, before).col_flip != plane_spec(plane, value).col_flip:
                state = self._views[plane]
                self.set_view_state(plane, pan=(-state.pan[0], state.pan[1]))

    layout = property(lambda self: self._layout, lambda self, v: self._set("_layout", v, LAYOUTS))
    single_plane = property(lambda self: self._single_plane, lambda self, v: self._set("_single_plane", v, PLANES))
    crosshair = property(lambda self: self._crosshair, lambda self, v: self._set("_crosshair", bool(v)))
    #: Zooming one view zooms the others by as much, about the crosshair (as in the linked views of other readers).
    link_zoom = property(lambda self: self._link_zoom, lambda self, v: self._set("_link_zoom", bool(v)))
    mouse_scheme = property(
        lambda self: self._mouse_scheme, lambda self, v: self._set("_mouse_scheme", v, tuple(MOUSE_SCHEMES))
    )

    @property
    def compare(self) -> bool:
        """Input | reconstruction | residual side by side (needs an analysis)."""
        return self._compare

    @compare.setter
    def compare(self, value: bool) -> None:
        self._set("_compare", bool(value) and bool(self.extra_layers))

    # ----- zoom and pan ---------------------------------------------------------------------
    def view_state(self, plane: str) -> ViewState:
        """Zoom and pan of a plane."""
        return self._views[plane]

    def set_view_state(self, plane: str, zoom: float | None = None, pan: tuple[float, float] | None = None) -> None:
        """Changes zoom (clamped to 0.1-40) and/or pan of a plane."""
        old = self._views[plane]
        new = ViewState(
            zoom=float(np.clip(zoom if zoom is not None else old.zoom, 0.1, 40.0)),
            pan=tuple(float(p) for p in (pan if pan is not None else old.pan)),  # type: ignore[arg-type]
        )
        if new != old:
            self._views[plane] = new
            self.view_changed.emit(plane)

    def zoom_view(self, plane: str, zoom: float, pan: tuple[float, float]) -> None:
        """Zooms a plane; with ``link_zoom`` the other planes zoom by the same factor, the crosshair kept put."""
        before = self._views[plane].zoom
        self.set_view_state(plane, zoom=zoom, pan=pan)
        factor = self._views[plane].zoom / before
        if not self._link_zoom or factor == 1.0 or self.image is None:
            return
        grid = self.image.grid
        for other in (p for p in PLANES if p != plane):
            state = self._views[other]
            factor_here = float(np.clip(state.zoom * factor, 0.1, 40.0)) / state.zoom
            spec = plane_spec(other, self.convention)
            pan_here = spec.pan_keeping(self.cursor, grid.shape, grid.spacing, state.pan, factor_here)
            self.set_view_state(other, zoom=state.zoom * factor_here, pan=pan_here)

    def step_view(self, plane: str, zoom: float = 1.0, pan: tuple[float, float] = (0.0, 0.0)) -> None:
        """A zoom or pan key: zooms a plane by ``zoom`` about the crosshair, or pans it by ``pan``.

        ``pan`` is in fractions of the slice shown at this zoom, across and down the screen, and moves what
        is seen: (0.1, 0) shows a tenth more of what lies to the right. About the crosshair, as the keys
        have no pointer: the point read stays put, as when linked views follow a zoom.
        """
        if self.image is None:
            return
        grid, state = self.image.grid, self._views[plane]
        spec = plane_spec(plane, self.convention)
        if zoom != 1.0:
            factor = float(np.clip(state.zoom * zoom, 0.1, 40.0)) / state.zoom
            self.zoom_view(
                plane, state.zoom * factor, spec.pan_keeping(self.cursor, grid.shape, grid.spacing, state.pan, factor)
            )
        if pan != (0.0, 0.0):
            rows, cols = spec.image_shape(grid.shape)
            dx, dy = spec.pixel_mm(grid.spacing)
            shown = (cols * dx / state.zoom, rows * dy / state.zoom)
            self.set_view_state(plane, pan=(state.pan[0] - pan[0] * shown[0], state.pan[1] - pan[1] * shown[1]))

    def reset_view(self) -> None:
        """Space: fit every view (no zoom, no pan). The slice read and the window stay (0 restores the window)."""
        self._views = {p: ViewState() for p in PLANES}
        for p in PLANES:
            self.view_changed.emit(p)

    # ----- drawing --------------------------------------------------------------------------
    def _layer(self, layer: str) -> ImageLayer:
        if layer == "input":
            return self.image  # type: ignore[return-value]
        if layer not in self.extra_layers:
            raise ValueError(f"no {layer} to show; run the analysis first")
        return self.extra_layers[layer]

    def set_layer_window(self, layer: str, window: Window) -> None:
        """Sets the window of the layer a view shows: the residual has its own, the others share the scan's."""
        if layer != "residual":
            self.set_window(window)
        elif window != self.layer_window(layer):
            self._layer_windows[layer] = window
            self.window_changed.emit()

    def layer_window(self, layer: str) -> Window:
        """The window a layer is drawn with: the scan's, or the residual's own symmetric one."""
        return self._layer_windows.get(layer, self._window) if layer == "residual" else self._window

    def _gray_tables(self, layer: str) -> tuple[np.ndarray, np.ndarray]:
        img = self._layer(layer)
        key = (layer, self.layer_window(layer), self._invert)
        if key not in self._gray_cache:
            if len(self._gray_cache) > 8:
                self._gray_cache.clear()
            gray = compositing.gray_lut(key[1], img.encoded.values, self._invert)
            self._gray_cache[key] = (gray, compositing.gray_pixels_lut(gray))
        return self._gray_cache[key]

    def blend_table(self) -> np.ndarray:
        """The heat blend table for the current overlay style (cached)."""
        if self._blend_cache is None or self._blend_cache[0] != self._style:
            self._blend_cache = (self._style, compositing.blend_lut(self._style))
        return self._blend_cache[1]

    def render(self, plane: str, layer: str = "input", overlay: bool | None = None) -> np.ndarray:
        """The pixels of the slice through the crosshair, as 0xFFRRGGBB uint32 (rows, cols).

        Args:
            plane: "axial", "coronal" or "sagittal".
            layer: "input", "reconstruction" or "residual".
            overlay: Draw the heatmap; default: on the input when the heatmap is shown.
        """
        if self.image is None:
            raise ValueError("no scan open")
        spec = plane_spec(plane, self._convention)
        img = self._layer(layer)
        index = self._cursor[spec.normal]
        codes = spec.extract(img.encoded.codes, index)
        gray, gray_pixels = self._gray_tables(layer)
        if overlay is None:
            overlay = layer == "input"
        if overlay and self._heat_visible and self.heat is not None:
            levels = spec.extract(self.heat.levels(self._style.vmin, self._style.vmax), index)
            return compositing.composite(codes, gray, levels, self.blend_table())
        return compositing.composite(codes, gray, gray_pixels=gray_pixels)

    def render_mip(self, plane: str) -> np.ndarray:
        """The slice through the crosshair with the heat's maximum projection along the plane's normal.

        Shows every finding at once, wherever it lies in depth; without an analysis, the plain slice.
        """
        if self.image is None:
            raise ValueError("no scan open")
        if self.heat is None or not self._heat_visible:
            return self.render(plane, overlay=False)
        spec = plane_spec(plane, self._convention)
        key = (spec.normal, self._style.vmin, self._style.vmax)
        if self._mip_cache is None or self._mip_cache[0] != key:
            levels = self.heat.levels(self._style.vmin, self._style.vmax)
            self._mip_cache = (key, levels.max(axis=spec.normal, keepdims=True))
        codes = spec.extract(self.image.encoded.codes, self._cursor[spec.normal])
        gray, _ = self._gray_tables("input")
        return compositing.composite(codes, gray, spec.extract(self._mip_cache[1], 0), self.blend_table())

    def readout(self, index) -> Readout | None:
        """Value, voxel index (the file's own), world position and heat at a canonical index."""
        if self.image is None:
            return None
        grid = self.image.grid
        idx = grid.clamp(index)
        heat = self.heat.value_at(idx) if self.heat is not None else None
        units = getattr(self.result, "units", "") if self.result is not None else ""
        return Readout(
            value=self.image.value_at(idx),
            units=self.units,
            index=grid.to_source(idx),
            world=tuple(float(x) for x in grid.world(idx)),  # type: ignore[arg-type]
            heat=heat,
            heat_units=units,
        )


@dataclass(frozen=True)
class ResultLayers:
    """What an analysis needs on screen, made from the result alone (``prepare_result``)."""

    result: Any
    heat: HeatLayer
    extra: dict[str, ImageLayer]
    residual_window: Window | None
    style: compositing.OverlayStyle


def prepare_result(result: Any, grid: CanonicalGrid | None = None) -> ResultLayers:
    """The layers and overlay style of an analysis, coded for display.

    Pure numpy and no Qt, so a worker makes them and the window only swaps them in: on a thin-slice CT,
    coding the reconstruction and residual and quantising the heat take seconds.
    """
    grid = grid or CanonicalGrid(result.heatmap.shape, result.volume.affine)
    style = default_style(result)
    heat = HeatLayer(result.heatmap, grid)
    heat.levels(style.vmin, style.vmax)  # the first frame's levels, made here rather than on the first draw
    extra = {}
    for name in ("reconstruction", "residual"):
        vol = getattr(result, name, None)
        if vol is not None:
            extra[name] = ImageLayer(vol, grid)
    window = None
    if "residual" in extra:
        res = np.abs(extra["residual"].values)
        span = float(np.percentile(res[:: max(1, res.shape[0] // 64)], 99.5)) or 1.0
        window = Window(0.0, 2 * span)
    return ResultLayers(result, heat, extra, window, style)


def _threshold_meaning(result: Any) -> tuple[str, str, str]:
    """What a threshold on this analysis is measured against: the model (id and weights) and the units."""
    return (str(result.model_id), str(getattr(result, "model_sha256", "")), str(getattr(result, "units", "")))


def default_style(result: Any, colormap: str = "hot", opacity: float = 0.6) -> compositing.OverlayStyle:
    """Overlay settings that suit an analysis: its threshold, a range from typical to peak heat."""
    heat = np.asarray(result.heatmap.array, dtype=np.float32)
    step = max(1, heat.size // 500_000)
    if heat.flags.c_contiguous:
        sample = heat.ravel()[::step]
    else:
        # The same voxels (every step-th in C order) without ravel's C-ordered copy of a whole Fortran array.
        sample = heat[np.unravel_index(np.arange(0, heat.size, step), heat.shape)]
    sample = sample[np.isfinite(sample)]
    median = float(np.median(sample)) if sample.size else 0.0
    top = float(np.percentile(sample, 99.99)) if sample.size else 1.0
    peaks = [float(f.peak) for f in getattr(result, "findings", [])]
    threshold = float(result.threshold) if result.threshold is not None else float(np.percentile(sample, 99))
    vmax = max([top, *peaks, threshold + max(abs(threshold) * 0.5, 1e-3)])
    fade = max(0.25 * (threshold - median), 0.1 * (vmax - threshold), 1e-6)
    vmin = min(median, threshold - fade)
    if threshold > 0:
        # Heat 0 marks voxels the model did not assess; it must sit on the lowest level, never coloured,
        # even when the assessed voxels' median is below 0 (healthier than the healthy average).
        vmin = max(vmin, 0.0)
    return compositing.OverlayStyle(
        colormap=colormap, opacity=opacity, threshold=threshold, fade=fade, vmin=vmin, vmax=vmax
    )


def _finding_voxel(finding: Any, result: Any, volume: Volume) -> np.ndarray:
    """The input voxel to show for a finding: its centre when that lies in it, else its peak.

    The score-weighted centre of a curved or ring-shaped region can fall outside the region, where the
    crosshair would point at nothing suspicious.
    """
    centre = np.rint(np.asarray(finding.centroid_voxel, dtype=float)).astype(int)
    labels = getattr(result, "labels", None)
    if labels is not None:
        inside = bool(np.all(centre >= 0) and np.all(centre < np.asarray(labels.shape)))
        if inside and int(labels.array[tuple(centre)]) == int(finding.label):
            return centre
    peak = volume.world_to_voxel(np.asarray(finding.peak_world, dtype=float)[None])[0]
    return np.rint(peak).astype(int)
