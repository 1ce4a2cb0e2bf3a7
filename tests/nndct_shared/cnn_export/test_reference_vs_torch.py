"""The reference executor's ops against torch.nn.functional on fixed-point data (exact: sums of
grid values are exact in float64 and in torch's float32, so results must be identical)."""
from __future__ import annotations

import numpy as np
import pytest

from nndct_shared.cnn_export import kernels as K

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _grid(rng, shape, fp=4, bw=8):
    return (rng.integers(-(2 ** (bw - 1)), 2 ** (bw - 1), size=shape) * 2.0 ** -fp).astype(
        np.float32)


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


@pytest.mark.parametrize("groups,kernel,stride,pad,dil", [
    (1, (3, 2), (2, 1), (1, 0), (1, 2)), (4, (3, 3), (1, 1), (1, 1), (1, 1)),
    (2, (1, 3), (1, 2), (0, 1), (1, 1))])
def test_conv2d(groups, kernel, stride, pad, dil) -> None:
    rng = np.random.default_rng(0)
    x, w, b = _grid(rng, (2, 4, 9, 7)), _grid(rng, (8, 4 // groups) + kernel, 6), \
        _grid(rng, (8,), 8)
    got = K.conv(x, w, b, stride, [(p, p) for p in pad], dil, groups)
    want = F.conv2d(_t(x), _t(w), _t(b), stride, pad, dil, groups).numpy()
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("groups,stride,pad,outpad,dil", [
    (1, (2, 2), (1, 1), (1, 1), (1, 1)), (4, (2, 1), (0, 1), (1, 0), (1, 1)),
    (2, (3, 2), (1, 0), (2, 1), (2, 1))])
def test_conv_transpose2d(groups, stride, pad, outpad, dil) -> None:
    rng = np.random.default_rng(1)
    x, w, b = _grid(rng, (2, 4, 5, 6)), _grid(rng, (4, 6 // groups if groups != 4 else 2, 3, 3), 6), None
    got = K.conv_transpose(x, w, b, stride, pad, outpad, dil, groups)
    want = F.conv_transpose2d(_t(x), _t(w), None, stride, pad, outpad, groups, dil).numpy()
    np.testing.assert_array_equal(got, want)


def test_conv1d() -> None:
    rng = np.random.default_rng(2)
    x, w, b = _grid(rng, (2, 3, 11)), _grid(rng, (5, 3, 4), 6), _grid(rng, (5,), 8)
    got = K.conv(x, w, b, (2,), [(1, 1)], (2,))
    np.testing.assert_array_equal(got, F.conv1d(_t(x), _t(w), _t(b), 2, 1, 2).numpy())


@pytest.mark.parametrize("kernel,stride,pad,ceil,include", [
    ((3, 3), (2, 2), (1, 1), True, True), ((3, 2), (2, 2), (1, 0), True, False),
    ((2, 2), (2, 2), (0, 0), False, True), ((3, 3), (3, 2), (0, 1), True, True)])
def test_pools_2d(kernel, stride, pad, ceil, include) -> None:
    x = _grid(np.random.default_rng(3), (2, 3, 8, 7))
    np.testing.assert_array_equal(K.max_pool(x, kernel, stride, pad, ceil),
                                  F.max_pool2d(_t(x), kernel, stride, pad, 1, ceil).numpy())
    np.testing.assert_array_equal(
        K.avg_pool(x, kernel, stride, pad, ceil, include),
        F.avg_pool2d(_t(x), kernel, stride, pad, ceil, include).numpy())


def test_pools_1d_and_adaptive() -> None:
    x = _grid(np.random.default_rng(4), (2, 3, 11))
    np.testing.assert_array_equal(K.max_pool(x, (3,), (2,), (1,), True),
                                  F.max_pool1d(_t(x), 3, 2, 1, 1, True).numpy())
    np.testing.assert_array_equal(K.avg_pool(x, (4,), (3,), (2,), True, True),
                                  F.avg_pool1d(_t(x), 4, 3, 2, True, True).numpy())
    np.testing.assert_array_equal(K.adaptive_avg_pool(x, (4,)),
                                  F.adaptive_avg_pool1d(_t(x), 4).numpy())
    x2 = _grid(np.random.default_rng(5), (2, 3, 7, 9))
    np.testing.assert_array_equal(K.adaptive_avg_pool(x2, (3, 4)),
                                  F.adaptive_avg_pool2d(_t(x2), (3, 4)).numpy())
    np.testing.assert_array_equal(K.adaptive_max_pool(x, (4,)),
                                  F.adaptive_max_pool1d(_t(x), 4).numpy())
    np.testing.assert_array_equal(K.adaptive_max_pool(x2, (3, 4)),
                                  F.adaptive_max_pool2d(_t(x2), (3, 4)).numpy())


def test_elementwise() -> None:
    x = _grid(np.random.default_rng(6), (4, 64))
    np.testing.assert_array_equal(K.hardswish(x), F.hardswish(_t(x)).numpy())
    np.testing.assert_array_equal(K.leaky_relu(x, 0.1015625),
                                  F.leaky_relu(_t(x), 0.1015625).numpy())
    w, b = _grid(np.random.default_rng(7), (10, 64), 7), _grid(np.random.default_rng(8), (10,))
    np.testing.assert_array_equal(K.linear(x, w, b), F.linear(_t(x), _t(w), _t(b)).numpy())
    np.testing.assert_array_equal(K.mean(x.reshape(4, 4, 16), [2], False),
                                  _t(x.reshape(4, 4, 16)).mean(2).numpy())
