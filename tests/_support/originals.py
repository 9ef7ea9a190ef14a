"""The layers beyond torch.nn as their originals define them, written in torch: torchvision and
timm are not installed here. torchvision.ops.stochastic_depth and drop_block2d/3d, timm's
drop_path, AWD-LSTM's LockedDropout."""

import torch
import torch.nn.functional as TF


def torch_stochastic_depth(input, p, mode, training=True):
    if not training or p == 0.0:
        return input
    survival_rate = 1.0 - p
    size = [input.shape[0]] + [1] * (input.ndim - 1) if mode == "row" else [1] * input.ndim
    noise = torch.empty(size, dtype=input.dtype).bernoulli_(survival_rate)
    if survival_rate > 0.0:
        noise.div_(survival_rate)
    return input * noise


def torch_drop_path(x, drop_prob=0.0, training=False, scale_by_keep=True):
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    random_tensor = x.new_empty(shape).bernoulli_(keep_prob)
    if keep_prob > 0.0 and scale_by_keep:
        random_tensor.div_(keep_prob)
    return x * random_tensor


def torch_drop_block(input, p, block_size, inplace=False, eps=1e-06, training=True):
    """torchvision's drop_block2d (4-D input) and drop_block3d (5-D input)."""
    if not training or p == 0.0:
        return input
    spatial = input.shape[2:]
    block_size = min(block_size, *spatial)
    if block_size % 2 == 0:
        raise ValueError(f"block size should be odd. Got {block_size} which is even.")
    numerator, count = p, 1
    for size in spatial:
        numerator = numerator * size  # not *=: that would scale a tensor p in place
        count *= size - block_size + 1
    gamma = numerator / (block_size ** len(spatial) * count)
    noise_shape = (*input.shape[:2], *(size - block_size + 1 for size in spatial))
    noise = torch.empty(noise_shape, dtype=input.dtype).bernoulli_(gamma)
    noise = TF.pad(noise, [block_size // 2] * 2 * len(spatial), value=0)
    pool = TF.max_pool2d if len(spatial) == 2 else TF.max_pool3d
    kernel = (block_size,) * len(spatial)
    noise = pool(noise, stride=(1,) * len(spatial), kernel_size=kernel, padding=block_size // 2)
    noise = 1 - noise
    normalize_scale = noise.numel() / (eps + noise.sum())
    if inplace:
        return input.mul_(noise).mul_(normalize_scale)
    return input * noise * normalize_scale


def torch_locked_dropout(x, p=0.5, training=True, batch_first=False):
    """AWD-LSTM's LockedDropout (mask (1, N, H) for (L, N, H)), with batch_first and unbatched
    inputs; p == 1 gives zeros (AWD-LSTM's would divide 0 by 0)."""
    if not training or not p:
        return x
    time_axis = 1 if batch_first and x.ndim == 3 else 0
    shape = list(x.shape)
    shape[time_axis] = 1
    m = x.new_empty(shape).bernoulli_(1 - p)
    mask = m / (1 - p) if p < 1 else m
    return mask.expand_as(x) * x
