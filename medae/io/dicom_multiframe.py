"""Enhanced multi-frame DICOM (Enhanced CT/MR/PET, Legacy Converted): one ``Frame`` per frame.

Geometry and value transforms live in functional groups (PS3.3 C.7.6.16): each attribute is taken
from the frame's own item of the Per-frame Functional Groups Sequence, else from the Shared
Functional Groups Sequence. Frames are then grouped, split and sorted exactly like single-frame
files, so a file holding several stacks (orientations, echoes, temporal positions) is split.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medae.io.dicom_header import FileHeader, Frame


_MEASURES = (("SliceThickness", "slice_thickness"), ("SpacingBetweenSlices", "spacing_between_slices"))


def frames_from_functional_groups(h: FileHeader, ds: Any) -> list[Frame]:
    """The frames of an enhanced multi-frame file, with per-frame position, orientation and rescale."""
    from medae.io import dicom_header as dh

    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    # How many frames the per-frame groups describe: fewer than NumberOfFrames is another fault than one frame
    # whose item lacks its position.
    h.info["per_frame_items"] = len(per_frame)
    top_window = dh.first_window(ds)
    top_slope = dh.rescale_value(h, ds, "RescaleSlope")
    top_intercept = dh.rescale_value(h, ds, "RescaleIntercept")
    frames: list[Frame] = []
    for i in range(h.n_frames):
        item = per_frame[i] if i < len(per_frame) else None

        def group(name: str, _item: Any = item) -> Any:
            for source in (_item, shared):
                if source is not None and name in source:
                    seq = source.get(name)
                    if seq:
                        return seq[0]
            return None

        pos = group("PlanePositionSequence")
        ori = group("PlaneOrientationSequence")
        meas = group("PixelMeasuresSequence")
        pvt = group("PixelValueTransformationSequence")
        voi = group("FrameVOILUTSequence")
        content = group("FrameContentSequence")
        echo = group("MREchoSequence")
        diffusion = group("MRDiffusionSequence")
        frame_type = group("MRImageFrameTypeSequence") or group("CTImageFrameTypeSequence")
        cardiac = group("CardiacSynchronizationSequence")
        legacy = _Legacy(item, shared)

        position = dh.vector(pos.get("ImagePositionPatient") if pos else ds.get("ImagePositionPatient"), 3)
        orientation = dh.vector(ori.get("ImageOrientationPatient") if ori else ds.get("ImageOrientationPatient"), 6)
        spacing = dh.vector(meas.get("PixelSpacing") if meas else ds.get("PixelSpacing"), 2)
        slope = dh.rescale_value(h, pvt, "RescaleSlope") if pvt else top_slope
        intercept = dh.rescale_value(h, pvt, "RescaleIntercept") if pvt else top_intercept
        window = dh.first_window(voi) if voi else top_window
        image_type = h.image_type
        if frame_type is not None and frame_type.get("FrameType"):
            image_type = tuple(str(v).strip().upper() for v in frame_type.FrameType)
        # A Legacy Converted file keeps what has no functional group (echo, acquisition) per frame in its
        # Unassigned Converted Attributes (PS3.3 C.7.6.16.2.25): without them two echoes look like copies.
        keys = {
            "echo_number": dh.as_int(legacy.get("EchoNumbers")),
            "echo_time": dh.as_float(echo.get("EffectiveEchoTime")) if echo else dh.as_float(legacy.get("EchoTime")),
            "temporal_position": dh.as_int(content.get("TemporalPositionIndex"))
            if content and content.get("TemporalPositionIndex") is not None
            else dh.as_int(legacy.get("TemporalPositionIdentifier")),
            "acquisition": dh.as_int(legacy.get("AcquisitionNumber")),
            "trigger_time": dh.as_float(cardiac.get("NominalCardiacTriggerDelayTime"))
            if cardiac
            else dh.as_float(legacy.get("TriggerTime")),
            "b_value": dh.as_float(diffusion.get("DiffusionBValue"))
            if diffusion
            else dh.as_float(legacy.get("DiffusionBValue")),
            "gradient": _gradient(diffusion),
            "image_type": image_type,
            "stack_id": str(content.get("StackID", "")) if content else "",
            "instance": dh.as_int(content.get("InStackPositionNumber")) if content else None,
        }
        if meas is not None:
            for name, key in _MEASURES:
                value = dh.as_float(meas.get(name))
                if value is not None and h.info.get(key) is None:
                    h.info[key] = value
        if pvt is not None and pvt.get("RescaleType") and not h.info.get("rescale_type"):
            h.info["rescale_type"] = str(pvt.RescaleType)
        frames.append(
            dh.Frame(
                header=h,
                index=i,
                position=position,
                orientation=orientation,
                pixel_spacing=None if spacing is None else (float(spacing[0]), float(spacing[1])),
                slope=1.0 if slope in (None, 0.0) else slope,
                intercept=intercept or 0.0,
                keys=keys,
                window=window,
            )
        )
    return frames


class _Legacy:
    """A frame's Unassigned Per-Frame Converted Attributes, then the Unassigned Shared ones."""

    def __init__(self, item: Any, shared: Any) -> None:
        self._sources = []
        for source, name in (
            (item, "UnassignedPerFrameConvertedAttributesSequence"),
            (shared, "UnassignedSharedConvertedAttributesSequence"),
        ):
            seq = source.get(name) if source is not None else None
            if seq:
                self._sources.append(seq[0])

    def get(self, name: str) -> Any:
        """The attribute's value, or None when neither holds it."""
        for source in self._sources:
            if name in source:
                return source.get(name)
        return None


def _gradient(diffusion) -> tuple | None:
    """The frame's diffusion gradient direction (MR Diffusion > Diffusion Gradient Direction Sequence)."""
    if diffusion is None:
        return None
    direction = diffusion.get("DiffusionGradientDirectionSequence")
    if not direction:
        return None
    from medae.io import dicom_header as dh  # imported here as above: the header module imports this one

    return dh.gradient_key(dh.vector(direction[0].get("DiffusionGradientOrientation"), 3))
