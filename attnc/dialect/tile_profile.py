"""Proton's in-kernel scopes: `tile.scope_enter "qk"` / `tile.scope_exit "qk"` around a stage of a kernel,
printed as `pl.enter_scope("qk")` / `pl.exit_scope("qk")` (`triton.profiler.language`). attn-instrument
asks for them; a kernel without them is unchanged.

```mlir
tile.scope_enter "qk"
%qk = tile.dot %q, %kt : ...
tile.scope_exit "qk"
```
"""

from __future__ import annotations

import re

from xdsl.dialects.builtin import StringAttr
from xdsl.irdl import IRDLOperation, irdl_op_definition, prop_def
from xdsl.utils.exceptions import VerifyException

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _ScopeOp(IRDLOperation):
    scope = prop_def(StringAttr)
    assembly_format = "$scope attr-dict"

    def __init__(self, scope: str):
        super().__init__(properties={"scope": StringAttr(scope)})

    def verify_(self) -> None:
        if not _NAME.fullmatch(self.scope.data):
            raise VerifyException(
                f"'{self.name}' op expected a scope name of letters, digits and _, but got \"{self.scope.data}\""
            )


@irdl_op_definition
class ScopeEnterOp(_ScopeOp):
    """`pl.enter_scope(name)`: a stage of the kernel starts here (Proton records a timestamp)."""

    name = "tile.scope_enter"


@irdl_op_definition
class ScopeExitOp(_ScopeOp):
    """`pl.exit_scope(name)`: the stage `name` ends here."""

    name = "tile.scope_exit"


__all__ = ["ScopeEnterOp", "ScopeExitOp"]
