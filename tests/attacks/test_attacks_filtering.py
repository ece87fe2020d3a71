"""What the filters do: blurs remove high-frequency energy, sharpening adds it,
noise has the requested statistics, impulses hit the requested fraction."""

from __future__ import annotations

import numpy as np
import pytest

from provmark.attacks import (
    box_blur,
    gaussian_blur,
    gaussian_noise,
    median_blur,
    salt_pepper,
    sharpen,
)

GREY = np.full((96, 128, 3), 128, np.uint8)


def test_gaussian_blur_energy_falls_with_sigma(photo, hf_energy):
    energies = [hf_energy(gaussian_blur(photo, sigma=s)) for s in (0.0, 0.5, 1.0, 1.5, 2.0)]
    assert all(a > b for a, b in zip(energies, energies[1:])), energies
    assert energies[-1] < 0.2 * energies[0]
    np.testing.assert_array_equal(gaussian_blur(photo, sigma=0.0), photo)


@pytest.mark.parametrize("attack", [gaussian_blur, median_blur, box_blur, sharpen])
def test_filters_leave_flat_images_alone(attack):
    np.testing.assert_array_equal(attack(GREY), GREY)


def test_box_blur_energy_falls_with_size_and_keeps_mean(photo, hf_energy):
    energies = [hf_energy(box_blur(photo, ksize=k)) for k in (1, 3, 5, 7)]
    assert all(a > b for a, b in zip(energies, energies[1:])), energies
    assert abs(box_blur(photo, ksize=5).mean() - photo.mean()) < 1.0


def test_box_blur_is_a_mean_filter():
    img = np.zeros((9, 9, 3), np.uint8)
    img[4, 4] = 90
    out = box_blur(img, ksize=3)
    np.testing.assert_array_equal(out[3:6, 3:6], np.full((3, 3, 3), 10, np.uint8))
    assert int(out.sum(dtype=np.int64)) == 9 * 10 * 3


def test_median_removes_impulse_noise(photo, psnr):
    noisy = salt_pepper(photo, fraction=0.05, rng=0)
    assert psnr(photo, median_blur(noisy, ksize=3)) > psnr(photo, noisy) + 5.0


def test_median_removes_isolated_pixel_but_keeps_edges():
    img = np.zeros((16, 16, 3), np.uint8)
    img[:, 8:] = 200  # vertical edge
    img[4, 3] = 255  # isolated pixel
    out = median_blur(img, ksize=3)
    assert (out[4, 3] == 0).all()
    np.testing.assert_array_equal(out[:, 8:], img[:, 8:])
    assert (out[:, :8] == 0).all()


def test_ksize_validation(photo):
    with pytest.raises(ValueError, match="ksize must be odd.*use 5"):
        median_blur(photo, ksize=4)
    with pytest.raises(ValueError, match=r"ksize must be an integer in \[1, inf\]"):
        box_blur(photo, ksize=0)


def test_sharpen_adds_energy_growing_with_amount(photo, hf_energy):
    energies = [hf_energy(sharpen(photo, amount=a)) for a in (0.0, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(energies, energies[1:])), energies
    np.testing.assert_array_equal(sharpen(photo, amount=0.0), photo)


def test_sharpen_overshoots_at_an_edge():
    img = np.zeros((8, 16, 3), np.uint8)
    img[:, :8] = 80
    img[:, 8:] = 160
    out = sharpen(img, amount=1.0, sigma=1.0).astype(int)
    assert out[:, 7].max() < 80 and out[:, 8].min() > 160  # dark and bright halos
    with pytest.raises(ValueError, match=r"sigma must be in \(0, inf\)"):
        sharpen(img, sigma=0.0)


@pytest.mark.parametrize("sigma", [2.0, 5.0, 10.0])
def test_gaussian_noise_has_requested_std(sigma):
    diff = gaussian_noise(GREY, sigma=sigma, rng=0).astype(float) - 128.0
    assert diff.std() == pytest.approx(sigma, rel=0.05, abs=0.3)  # abs: rounding to integers
    assert abs(diff.mean()) < 5 * sigma / np.sqrt(diff.size)  # 5 standard errors
    # independent across channels
    flat = diff.reshape(-1, 3)
    assert abs(np.corrcoef(flat[:, 0], flat[:, 1])[0, 1]) < 0.05


def test_gaussian_noise_zero_sigma_is_identity(photo):
    np.testing.assert_array_equal(gaussian_noise(photo, sigma=0.0, rng=1), photo)


@pytest.mark.parametrize("fraction", [0.001, 0.01, 0.05, 0.5])
def test_salt_pepper_hits_exactly_the_fraction(fraction):
    out = salt_pepper(GREY, fraction=fraction, rng=4)
    changed = (out != GREY).any(axis=2)
    assert changed.sum() == round(fraction * GREY.shape[0] * GREY.shape[1])
    hit = out[changed]
    assert np.isin(hit, (0, 255)).all()
    assert (hit[:, 0] == hit[:, 1]).all() and (hit[:, 1] == hit[:, 2]).all()  # black or white pixels
    if changed.sum() >= 100:
        white = (hit[:, 0] == 255).mean()
        assert 0.35 < white < 0.65


def test_salt_pepper_validation(photo):
    with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\]"):
        salt_pepper(photo, fraction=1.2)
