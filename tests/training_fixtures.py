"""Shared settings for tests of the training data."""

# Every MONAI augmentation off, so a test sees only what it switches on.
AUGMENT_OFF = {
    "affine_prob": 0.0,
    "rotate_deg": 0.0,
    "scale": 0.0,
    "translate_vox": 0,
    "elastic_prob": 0.0,
    "bias_prob": 0.0,
    "gamma_prob": 0.0,
    "noise_prob": 0.0,
    "blur_prob": 0.0,
}
