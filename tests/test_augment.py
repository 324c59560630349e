import torch

from mdpo.augment import random_shift


def test_random_shift_is_a_seeded_crop_of_the_padded_frame():
    frames = torch.randint(0, 256, (5, 3, 16, 16), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    a = random_shift(frames, torch.Generator().manual_seed(1))
    b = random_shift(frames, torch.Generator().manual_seed(1))
    assert a.shape == frames.shape and a.dtype == torch.uint8 and torch.equal(a, b)
    padded = torch.nn.functional.pad(frames.float(), (4, 4, 4, 4), mode="replicate")
    for i in range(5):  # each output is some 16x16 window of its padded frame
        windows = padded[i].unfold(1, 16, 1).unfold(2, 16, 1)  # (3, 9, 9, 16, 16)
        assert any(torch.equal(windows[:, y, x], a[i].float()) for y in range(9) for x in range(9))
    assert not torch.equal(a, random_shift(frames, torch.Generator().manual_seed(2)))
