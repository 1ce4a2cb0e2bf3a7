"""The finetuning loss of one weighted layer as a quadratic form: AdaQuant's objective without
running the layer.

A conv / linear layer's output is linear in its parameters: for every output value,
y = theta . f, where f is the input patch it reads (plus a 1 for the bias) and theta the output
channel's weights and bias. Over all finetuning samples, the mean squared error of the layer
with parameters theta against the float outputs Y is therefore

    sum_rows ||F (theta - theta_0)^T - R_0||^2 / n
        = (tr(D G D^T) - 2 tr(D E) + r) / n,    D = theta - theta_0,

with G = F^T F (the patches' Gram matrix), E = F^T R_0, r = ||R_0||^2, R_0 = Y - F theta_0^T the
float parameters' error on the quantized input, and n the number of output values: `LayerGram`
holds G, E, r and n, gathered once from the data (one pass, ~K/C_out forwards of the layer for
K features per patch), after which the loss and its gradient cost O(C_out K^2), nothing that
grows with the data. Written around theta_0 the terms are of the loss's own size, so float64
keeps them exact enough to compare states. Grouped and depthwise convolutions have one G per
group; Conv1d, Conv2d, ConvTranspose2d (patches from a one-hot transposed convolution, which
gives exactly what the layer multiplies each weight with) and Linear (patches are the input
rows) are covered.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..nn.cnn_modules import Conv1d, ConvTranspose2d, Linear, NodeModule

__all__ = ["LayerGram", "layer_parameters", "patches"]


def _groups(module: NodeModule) -> int:
    return 1 if isinstance(module, Linear) else int(module.groups)


def layer_parameters(module: NodeModule, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """theta of `module` for these weight and bias values: (groups, out channels per group,
    features per group [+ 1 for the bias]), in the order of `patches`' features."""
    g = _groups(module)
    if isinstance(module, ConvTranspose2d):
        cin, cout_g = weight.shape[0], weight.shape[1]
        theta = weight.reshape(g, cin // g, cout_g, -1).permute(0, 2, 1, 3).reshape(g, cout_g, -1)
    else:
        theta = weight.reshape(g, weight.shape[0] // g, -1)
    if bias is not None:
        theta = torch.cat([theta, bias.reshape(g, -1, 1)], dim=2)
    return theta


def _one_hot_transposed(module: ConvTranspose2d, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Weights of a transposed convolution whose output channel (group, c, i, j) is the input
    value that the layer multiplies with weight [c, :, i, j]."""
    cin = module.weight.shape[0]
    kh, kw = module.weight.shape[2], module.weight.shape[3]
    g = module.groups
    per_group = (cin // g) * kh * kw
    eye = torch.zeros(cin, per_group, kh, kw, dtype=dtype, device=device)
    for ci in range(cin):
        local = ci % (cin // g)
        for i in range(kh):
            for j in range(kw):
                eye[ci, (local * kh + i) * kw + j, i, j] = 1.0
    return eye


def _by_group(blocks: torch.Tensor) -> torch.Tensor:
    """(samples, groups, values, positions) -> (groups, values, samples x positions): one copy,
    after which each group's products are a single large matrix product."""
    g, k = blocks.shape[1], blocks.shape[2]
    return blocks.permute(1, 2, 0, 3).reshape(g, k, -1)


def patches(module: NodeModule, x: torch.Tensor) -> torch.Tensor:
    """The features every output value of `module` reads from input `x`, as
    (groups, features per group, output positions of the batch) (sample-major positions).

    A convolution's patches are gathered with one strided copy straight into this layout (the
    padded input viewed as (channel, kernel row, kernel column, sample, output row, output
    column)); a Linear's are its input rows, transposed; a transposed convolution's come from a
    one-hot transposed convolution."""
    g = _groups(module)
    if isinstance(module, Linear):
        return x.reshape(-1, x.shape[-1]).t().unsqueeze(0)
    if isinstance(module, ConvTranspose2d):
        kernel = _one_hot_transposed(module, x.dtype, x.device)
        out = F.conv_transpose2d(x, kernel, None, module.stride, module.padding, module.output_padding,
                                 g, module.dilation)
        return _by_group(out.reshape(out.shape[0], g, -1, out.shape[2] * out.shape[3]))
    if isinstance(module, Conv1d):
        x = x.unsqueeze(2)
        kernel, stride = (1, module.weight.shape[2]), (1, module.stride[0])
        padding, dilation = (0, module.padding[0]), (1, module.dilation[0])
    else:
        kernel, stride, padding, dilation = (tuple(module.weight.shape[2:]), tuple(module.stride),
                                             tuple(module.padding), tuple(module.dilation))
    xp = F.pad(x, (padding[1], padding[1], padding[0], padding[0])).contiguous()
    n, c, h, w = xp.shape
    out_h = (h - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    out_w = (w - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    sn, sc, sh, sw = xp.stride()
    view = xp.as_strided((c, kernel[0], kernel[1], n, out_h, out_w),
                         (sc, dilation[0] * sh, dilation[1] * sw, sn, stride[0] * sh, stride[1] * sw))
    return view.reshape(g, (c // g) * kernel[0] * kernel[1], n * out_h * out_w)


def _outputs(module: NodeModule, y: torch.Tensor) -> torch.Tensor:
    """Layer outputs in `patches`' layout: (groups, out channels per group, positions)."""
    if isinstance(module, Linear):
        return y.reshape(-1, y.shape[-1]).t().unsqueeze(0)
    g = _groups(module)
    return _by_group(y.reshape(y.shape[0], g, y.shape[1] // g, -1))


@dataclass
class LayerGram:
    """G, E, r, n and theta_0 of the module docstring (float64)."""

    gram: torch.Tensor
    cross: torch.Tensor
    residual: float
    count: int
    base: torch.Tensor

    @classmethod
    def gather(cls, module: NodeModule, x_quant: Sequence[torch.Tensor], y_float: Sequence[torch.Tensor]
               ) -> LayerGram:
        """From the layer's quantized inputs and float outputs (per batch); theta_0 is the
        module's parameters as they are now (the float ones: call it before changing them).

        Per batch, F^T F and F^T R_0 are float32 matrix products (one per group, over all the
        batch's output positions), summed in float64 over the batches; the bias's row and column
        of G are the feature sums and the number of rows, so no column of ones is materialised."""
        bias = getattr(module, "bias", None)
        base = layer_parameters(module, module.weight.detach(), None if bias is None else bias.detach())
        gram = cross = feature_sums = residual_sums = None
        residual, rows, count = 0.0, 0, 0
        saved = module.quant_runtime
        module.quant_runtime = None  # the float layer
        try:
            with torch.no_grad():
                for x, y in zip(x_quant, y_float):
                    cols = patches(module, x)  # (g, K, rows of the batch)
                    r0 = _outputs(module, y - module.compute(x))  # (g, C_out/g, rows)
                    g_part = torch.bmm(cols, cols.transpose(1, 2)).to(torch.float64)
                    e_part = torch.bmm(cols, r0.transpose(1, 2)).to(torch.float64)
                    ones = cols.new_ones(cols.shape[0], cols.shape[2], 1)
                    f_sum = torch.bmm(cols, ones).squeeze(2).to(torch.float64)
                    r_sum = torch.bmm(r0, ones).squeeze(2).to(torch.float64)
                    gram = g_part if gram is None else gram + g_part
                    cross = e_part if cross is None else cross + e_part
                    feature_sums = f_sum if feature_sums is None else feature_sums + f_sum
                    residual_sums = r_sum if residual_sums is None else residual_sums + r_sum
                    residual += float(torch.sum(r0.to(torch.float64) ** 2))
                    rows += cols.shape[2]
                    count += y.numel()
        finally:
            module.quant_runtime = saved
        if bias is not None:  # the feature 1 of the bias: its products are sums and the row count
            ones = torch.full((gram.shape[0], 1, 1), float(rows), dtype=torch.float64)
            gram = torch.cat([torch.cat([gram, feature_sums.unsqueeze(2)], dim=2),
                              torch.cat([feature_sums.unsqueeze(1), ones], dim=2)], dim=1)
            cross = torch.cat([cross, residual_sums.unsqueeze(1)], dim=1)
        return cls(gram, cross, residual, count, base.to(torch.float64))

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the layer with parameters `theta` (differentiable)."""
        d = theta.to(torch.float64) - self.base
        quadratic = torch.sum(torch.bmm(d, self.gram) * d)
        linear = torch.sum(d * self.cross.transpose(1, 2))
        return (quadratic - 2.0 * linear + self.residual) / self.count
