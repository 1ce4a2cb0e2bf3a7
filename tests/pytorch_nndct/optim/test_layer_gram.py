"""The fast-finetune loss as a quadratic form (layer_gram) equals running the layer, for every
layer kind; and the layer walk feeds each layer the data recomputation would."""
from __future__ import annotations

import pytest
import torch

from pytorch_nndct.nn import cnn_modules as m
from pytorch_nndct.optim.layer_gram import LayerGram, layer_parameters

torch.manual_seed(0)


def _layers(digits):
    """(module, input batches): every weighted kind, grouped and strided variants, on digits."""
    x = digits[0][:96]
    rows = x.reshape(96, 8, 8)
    conv = m.Conv2d(1, 6, (3, 3), (1, 1), (1, 1), (1, 1))
    strided = m.Conv2d(4, 6, (3, 3), (2, 2), (1, 1), (2, 2), groups=2)
    depthwise = m.Conv2d(4, 4, (3, 3), (1, 1), (1, 1), (1, 1), groups=4)
    conv1d = m.Conv1d(8, 5, (3,), (2,), (1,), (1,), bias=False)
    transposed = m.ConvTranspose2d(4, 6, (3, 3), (2, 2), (1, 1), (1, 1), (1, 1), groups=2)
    linear = m.Linear(64, 10)
    four = torch.cat([x, x.flip(2), x.flip(3), x.transpose(2, 3)], dim=1)
    cases = [(conv, x), (strided, four), (depthwise, four), (conv1d, rows), (transposed, four),
             (linear, x.reshape(96, 64))]
    for module, _ in cases:
        with torch.no_grad():
            module.weight.normal_(0, 0.3)
            if module.bias is not None:
                module.bias.normal_(0, 0.1)
    return cases


def test_quadratic_loss_equals_running_the_layer(digits):
    for module, x in _layers(digits):
        batches = list(x.split(40))
        with torch.no_grad():
            target = [module.compute(b) + 0.05 * torch.randn_like(module.compute(b)) for b in batches]
        gram = LayerGram.gather(module, batches, target)
        weight, bias = module.weight.detach(), None if module.bias is None else module.bias.detach()
        for scale in (1.0, 1.03, 0.9):  # the float params and two others
            w = weight * scale + 0.01 * torch.randn_like(weight)
            b = None if bias is None else bias * scale
            with torch.no_grad():
                saved = module.weight.clone(), None if bias is None else module.bias.clone()
                module.weight.copy_(w)
                if b is not None:
                    module.bias.copy_(b)
                direct = sum(float(torch.sum((module.compute(xb).double() - t.double()) ** 2))
                             for xb, t in zip(batches, target)) / sum(t.numel() for t in target)
                module.weight.copy_(saved[0])
                if b is not None:
                    module.bias.copy_(saved[1])
            got = float(gram.loss(layer_parameters(module, w, b)))
            assert got == pytest.approx(direct, rel=1e-4), type(module).__name__


def test_quadratic_loss_gradient_equals_autograd_through_the_layer(digits):
    module, x = _layers(digits)[1]  # the strided, dilated, grouped conv
    target = module.compute(x).detach() * 0.9
    gram = LayerGram.gather(module, [x], [target])
    w = module.weight.detach().clone().requires_grad_(True)
    b = module.bias.detach().clone().requires_grad_(True)
    gram.loss(layer_parameters(module, w, b)).backward()
    w2 = w.detach().clone().requires_grad_(True)
    b2 = b.detach().clone().requires_grad_(True)
    y = torch.nn.functional.conv2d(x.double(), w2.double(), b2.double(), module.stride, module.padding,
                                   module.dilation, module.groups)
    torch.mean((y - target.double()) ** 2).backward()
    assert torch.allclose(w.grad.double(), w2.grad.double(), rtol=1e-4, atol=1e-9)
    assert torch.allclose(b.grad.double(), b2.grad.double(), rtol=1e-4, atol=1e-9)
