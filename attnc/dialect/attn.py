"""The `attn` dialect: attention as logical ops on whole tensors, and its fused form."""

from __future__ import annotations

from xdsl.irdl import IRDLOperation, irdl_op_definition, traits_def, var_operand_def
from xdsl.traits import IsTerminator, Pure


@irdl_op_definition
class YieldOp(IRDLOperation):
    """Terminates every attn region.

    ```mlir
    attn.yield %r : f32
    ```
    """

    name = "attn.yield"
    values = var_operand_def()
    traits = traits_def(IsTerminator(), Pure())
    assembly_format = "attr-dict ($values^ `:` type($values))?"

    def __init__(self, *values):
        super().__init__(operands=[list(values)])
