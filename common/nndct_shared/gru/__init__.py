"""The quantized GRU: the StandardGruCell graph in the style of the reference's StandardLstmCell.

`naming` (graph/node/parameter names of both variants), `cell_params` (float weights), `cell` and
`stack` (C++-backed cells and multi-layer/bidirectional stacks), `codegen` and `xmodel_export`
(the files written per cell). Calibration statistics, alignment, the session and the dumps are
the LSTM flow's (`nndct_shared.lstm`), driven by the cells' `CellDefinition`.
"""
