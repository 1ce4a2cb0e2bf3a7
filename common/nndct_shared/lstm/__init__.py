"""The reference RNN quantizer's StandardLstmCell, framework-neutral.

`naming` (graph/node/parameter names), `cell_params` (float weights), `fix_positions`
(calibration statistics and the export alignment), `cell` and `stack` (C++-backed cells and
multi-layer/bidirectional stacks), `session` (calib -> quant_info.json -> test -> xmodel and
dumps), `xmodel_export` and `codegen` (the files written per cell).
"""
