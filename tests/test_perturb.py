import pytest
import torch

from mdpo.errors import MdpoError
from mdpo.perturb import FAMILIES, PerturbSpec, color_jitter, perturb, random_conv


def _frames(n=6, seed=0):
    return torch.randint(0, 256, (n, 3, 16, 16), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def _gen(seed=1):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("family", FAMILIES)
def test_shape_dtype_range_and_seed(family):
    frames = _frames()
    a = perturb(family, frames, _gen(), PerturbSpec())
    assert a.shape == frames.shape and a.dtype == torch.uint8
    assert torch.equal(a, perturb(family, frames, _gen(), PerturbSpec()))  # same seed, same output
    assert not torch.equal(a, perturb(family, frames, _gen(2), PerturbSpec()))
    assert not torch.equal(a, frames)


@pytest.mark.parametrize("layers,kernel", [(1, 3), (3, 5)])
def test_random_conv_spans_the_pixel_range_and_differs_per_frame(layers, kernel):
    frames = _frames(4)
    out = random_conv(frames, _gen(), layers, kernel)
    for image in out:
        assert image.min() == 0 and image.max() == 255  # min-max rescaled per frame
    same = frames[:1].repeat(4, 1, 1, 1)
    copies = random_conv(same, _gen(), layers, kernel)
    assert len({tuple(c.flatten()[:64].tolist()) for c in copies}) == 4  # each copy its own weights


def test_random_conv_with_a_centred_delta_kernel_is_the_identity(monkeypatch):
    # a positive multiple of the identity kernel leaves a frame that already spans [0, 255] unchanged,
    # which checks the grouping (each frame its own weights, channel to channel) and the padding
    from mdpo import perturb as module

    def delta(shape, generator, device, uniform=False):
        out_channels, in_channels, k, _ = shape
        weight = torch.zeros(shape)
        weight[torch.arange(out_channels), torch.arange(out_channels) % in_channels, k // 2, k // 2] = 2.0
        return weight

    frames = _frames(2)
    frames[:, 0, 0, 0], frames[:, 0, 0, 1] = 0, 255
    monkeypatch.setattr(module, "_draw", delta)
    assert torch.equal(random_conv(frames, _gen(), layers=2, kernel=3), frames)


def test_zero_strength_jitter_is_the_identity():
    frames = _frames()
    assert torch.equal(color_jitter(frames, _gen(), 0.0, 0.0, 0.0, 0.0), frames)


def test_brightness_scales_pixels():
    frames = torch.full((1, 3, 2, 2), 100, dtype=torch.uint8)
    out = color_jitter(frames, _gen(), brightness=0.5, contrast=0, saturation=0, hue=0)
    u = torch.rand((4, 1), generator=_gen())[0, 0] * 2 - 1
    assert out.unique().item() == round(100 * (1 + 0.5 * u.item()))


def test_hue_keeps_greys_and_a_full_turn_is_the_identity():
    grey = torch.full((2, 3, 4, 4), 77, dtype=torch.uint8)
    assert torch.equal(color_jitter(grey, _gen(), 0, 0, 0, 0.5), grey)
    from mdpo.perturb import _rotate_hue

    x = _frames(2).float() / 255
    assert torch.allclose(_rotate_hue(x, torch.ones(2)), x, atol=1e-5)
    third = _rotate_hue(x, torch.full((2,), 1 / 3))  # a third of a turn cycles the channels
    assert torch.allclose(third, x[:, [2, 0, 1]], atol=1e-5)


def _mid_range_frames():
    return torch.randint(96, 161, (8, 3, 8, 8), generator=torch.Generator().manual_seed(3), dtype=torch.uint8)


def test_saturation_keeps_each_pixels_luma():
    frames = _mid_range_frames()
    out = color_jitter(frames, _gen(), 0, 0, saturation=0.4, hue=0)
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    assert not torch.equal(out, frames)
    assert ((out.float() * luma).sum(1) - (frames.float() * luma).sum(1)).abs().max() <= 1.0


def test_hue_keeps_each_pixels_channel_mean():
    frames = _mid_range_frames()
    out = color_jitter(frames, _gen(), 0, 0, 0, hue=0.2)
    assert not torch.equal(out, frames)
    assert (out.float().mean(1) - frames.float().mean(1)).abs().max() <= 1.0


def test_bad_spec_is_a_user_error():
    with pytest.raises(MdpoError):
        PerturbSpec(kernel=4)
    with pytest.raises(MdpoError):
        PerturbSpec(hue=0.7)
