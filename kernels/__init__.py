"""Numba kernels of provmark (installed as ``provmark.kernels``).

Leaf functions on contiguous arrays with preallocated outputs: the Haar DWT, the
8x8 block DCT, angle-QIM modulation/demodulation and tile folding. Validation,
allocation and dtype policy live in :mod:`provmark`; this package never imports it.
Each kernel has a plain reference (PyWavelets, ``scipy.fft``, NumPy) that the test
suite checks it against.
"""

from ._jit import FASTMATH
from ._modulation import (
    ANGLE_PERIOD,
    aqim_embed_deltas,
    aqim_soft_observe,
    aqim_margin,
    aqim_target,
    add_enlarged_change,
    apply_block_deltas,
    luma_pair_coeffs,
)
from ._quality import box_moments, change_bound, ssim_mean, ssim_mean_against
from ._sync import carrier_maps, fold_phase_features, histogram_median, pilot_cross_spectra
from ._template import (coherent_best_scores, separable_origin_scores, template_score_grid,
                        template_score_product)
from ._viterbi import list_viterbi_decode, viterbi_decode
from ._transforms import (
    DCT8,
    DCT8_64,
    block_dct8,
    block_idct8,
    dct_matrix,
    haar_dwt2,
    haar_idwt2,
    rgb_to_luma,
)

__all__ = [
    "carrier_maps",
    "fold_phase_features",
    "pilot_cross_spectra",
    "histogram_median",
    "viterbi_decode",
    "list_viterbi_decode",
    "FASTMATH",
    "ANGLE_PERIOD",
    "DCT8",
    "DCT8_64",
    "dct_matrix",
    "haar_dwt2",
    "haar_idwt2",
    "block_dct8",
    "block_idct8",
    "rgb_to_luma",
    "aqim_target",
    "aqim_margin",
    "aqim_embed_deltas",
    "apply_block_deltas",
    "add_enlarged_change",
    "luma_pair_coeffs",
    "aqim_soft_observe",
    "template_score_grid",
    "template_score_product",
    "coherent_best_scores",
    "separable_origin_scores",
    "box_moments",
    "change_bound",
    "ssim_mean_against",
    "ssim_mean",
]
