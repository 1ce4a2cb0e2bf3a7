"""QAT end to end on sklearn digits: accuracy, learned fix positions, gradients, deployment."""
from __future__ import annotations

import math

import torch

import qat_models

from nndct_shared.quant_info_v3 import read_record
from pytorch_nndct.qproc.cnn import TorchQuantizer

INPUT = "ResNetlet::nndct_input_0"


def test_deployable_accuracy_is_within_a_point_of_float(qat_run):
    print(f"\nfloat {qat_run.float_acc:.2f} %, quantized before QAT {qat_run.quantized_before:.2f} %, "
          f"after QAT {qat_run.qat_acc:.2f} %, deployable {qat_run.deploy_acc:.2f} %")
    assert qat_run.float_acc > 90.0
    assert qat_run.deploy_acc >= qat_run.float_acc - 1.0
    assert qat_run.deploy_acc == qat_run.qat_acc


def test_deployable_model_computes_exactly_the_trained_model(qat_run, digits_data):
    x_test = digits_data[2]
    with torch.no_grad():
        trained = qat_run.model(x_test)
        deployed = qat_run.deployable(x_test)
    assert torch.equal(trained, deployed)


def test_parameters_split_into_quantizer_and_network_parameters(qat_run):
    model = qat_run.model
    quantizer = {id(p) for p in model.quantizer_parameters()}
    network = {id(p) for p in model.non_quantizer_parameters()}
    assert not quantizer & network
    assert quantizer | network == {id(p) for p in model.parameters()}
    # one threshold per quant_info entry: 6 params (conv1 w/b, conv2 w/b (bias from BN
    # folding), fc w/b) + 6 outputs (input, relu1, conv2, relu2 (add fused), pool, fc)
    assert len(quantizer) == 12
    shapes = sorted(tuple(p.shape) for p in model.non_quantizer_parameters())
    assert shapes == sorted([(8, 1, 3, 3), (8,), (8, 8, 3, 3), (8,), (10, 32), (10,)])
    assert all(p.dim() == 0 for p in model.quantizer_parameters())


def test_gradients_reach_every_quantizer(qat_run):
    grads = qat_run.first_grads
    # the digits' pixels are k/16, on the input's grid: no rounding error, no saturation, so
    # TQT's threshold gradient of the input is exactly zero
    assert qat_run.initial_fix[INPUT] >= 4
    assert float(grads[INPUT]) == 0.0
    for name, grad in grads.items():
        if name != INPUT:
            assert float(grad) != 0.0 and math.isfinite(float(grad)), name
    assert all(float(g.abs().sum()) > 0.0 for g in qat_run.weight_grads)


def test_thresholds_are_learned(qat_run):
    learned = {name: float(p.detach()) for name, p in qat_run.model.named_quantizers()}
    assert learned[INPUT] == qat_run.initial[INPUT]  # zero gradient: Adam leaves it exactly
    moved = [n for n in learned if n != INPUT and learned[n] != qat_run.initial[n]]
    assert sorted(moved) == sorted(n for n in learned if n != INPUT)
    # initial thresholds sit mid-interval of their fix position
    for name, value in qat_run.initial.items():
        assert value == 8 - 1 - qat_run.initial_fix[name] - 0.5


def test_quant_info_has_the_calibration_flow_names_and_learned_fix_positions(qat_run, float_model,
                                                                              digits_data, tmp_path):
    ours = read_record(qat_run.out_dir / "quant_info.json").info
    calib = TorchQuantizer("calib", float_model, (digits_data[0][:1],), str(tmp_path))
    calib.quant_model(digits_data[0][:8])
    reference = read_record(calib.export_quant_config()).info
    assert list(ours.param) == list(reference.param)
    assert list(ours.output) == list(reference.output)
    fix = qat_run.model.fix_positions()
    assert {**ours.param, **ours.output} == {name: (8, fix[name]) for name in fix}


def test_export_xmodel_from_the_deployable_model(qat_run, digits_data):
    with torch.no_grad():
        qat_run.deployable(digits_data[2][:1])
    path = qat_run.processor.export_xmodel(str(qat_run.out_dir))
    assert path.name == "ResNetlet_int.xmodel"
    assert path.stat().st_size > 0


def test_trained_state_dict_reloads_into_a_new_trainable_model(qat_run, digits_data):
    fresh = qat_run.processor.trainable_model()
    fresh.load_state_dict(qat_run.model.state_dict())
    assert fresh.fix_positions() == qat_run.model.fix_positions()
    with torch.no_grad():
        assert torch.equal(fresh(digits_data[2]), qat_run.model(digits_data[2]))


def test_standalone_and_folded_batchnorm_deploy_exactly(tmp_path):
    """Weights changed as training would change them; the deployable model (re-captured from
    the float model the trained weights were written into) still computes bit for bit the same."""
    from pytorch_nndct import QatProcessor

    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    processor = QatProcessor(qat_models.StandaloneBN().eval(), (x[:1],), device="cpu")
    ops = [n.op_type for n in processor.graph.topological_order()]
    assert ops.count("scale") == 1 and "batch_norm" not in ops
    model = processor.trainable_model()
    model(x)  # initialise the quantizers
    with torch.no_grad():
        for p in model.non_quantizer_parameters():
            p.mul_(1.1).add_(0.01)
        for p in model.quantizer_parameters():
            p.sub_(0.7)
    deployable = processor.to_deployable(model, str(tmp_path))
    with torch.no_grad():
        assert torch.equal(deployable(x), model(x))
