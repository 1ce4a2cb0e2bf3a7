"""Framework-neutral pieces of the CNN flow that every front end shares: BatchNorm folding and
the placement of fix points on a captured `Graph` (see `graph/ops` for the op contract)."""
from __future__ import annotations

from .bn_fold import bn_as_scale, fold_bn
from .fix_plan import FixPlan, PlannedTensor, plan_fixes

__all__ = ["FixPlan", "PlannedTensor", "bn_as_scale", "fold_bn", "plan_fixes"]
