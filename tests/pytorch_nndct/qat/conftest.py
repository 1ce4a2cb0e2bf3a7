"""One QAT run shared by the QAT tests: float training, then QAT, then deployment (~5 s)."""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))

import qat_models  # noqa: E402


@pytest.fixture(scope="session")
def digits_data():
    return qat_models.digits()


@pytest.fixture(scope="session")
def float_model(digits_data):
    """ResNetlet trained in float (15 epochs, Adam 5e-3): ~93 % on the 397 test digits."""
    x, y, _, _ = digits_data
    torch.manual_seed(0)
    model = qat_models.ResNetlet()
    return qat_models.train(model, torch.optim.Adam(model.parameters(), lr=5e-3), x, y, epochs=15)


@pytest.fixture(scope="session")
def qat_run(digits_data, float_model, tmp_path_factory):
    """QatProcessor -> trainable_model -> one recorded step -> 2 epochs of QAT -> to_deployable."""
    from pytorch_nndct import QatProcessor

    x, y, x_test, y_test = digits_data
    processor = QatProcessor(float_model, (x[:1],), bitwidth=8, device="cpu")
    model = processor.trainable_model()
    model.train()
    F.cross_entropy(model(x[:64]), y[:64]).backward()  # first forward initialises the quantizers
    first_grads = {name: p.grad.detach().clone() for name, p in model.named_quantizers()}
    weight_grads = [p.grad.detach().clone() for p in model.non_quantizer_parameters()]
    initial = {name: float(p.detach()) for name, p in model.named_quantizers()}
    initial_fix = model.fix_positions()
    model.eval()
    quantized_before = qat_models.accuracy(model, x_test, y_test)
    model.zero_grad()
    optimizer = torch.optim.Adam([
        {"params": model.quantizer_parameters(), "lr": 1e-2, "name": "quantizer"},
        {"params": model.non_quantizer_parameters(), "lr": 1e-4, "name": "weight"},
    ])
    qat_models.train(model, optimizer, x, y, epochs=2, seed=1)
    out_dir = tmp_path_factory.mktemp("qat_result")
    deployable = processor.to_deployable(model, str(out_dir))
    return SimpleNamespace(
        processor=processor, model=model, deployable=deployable, out_dir=out_dir,
        first_grads=first_grads, weight_grads=weight_grads, initial=initial, initial_fix=initial_fix,
        float_acc=qat_models.accuracy(float_model, x_test, y_test), quantized_before=quantized_before,
        qat_acc=qat_models.accuracy(model, x_test, y_test),
        deploy_acc=qat_models.accuracy(deployable, x_test, y_test))
