"""Plain softmax attention: no score_mod, no mask_mod.

Both names are set to None on purpose: a variant file must say which mods it has, so
a file that defines neither (a typo such as `def mask(...)`) is an error, not silently
plain attention.

    attnc run examples/plain.py
    attnc compile examples/plain.py --shape 2,4,2,128,128,64,64 --emit triton
"""

from __future__ import annotations

score_mod = None
mask_mod = None
