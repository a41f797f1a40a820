"""Which job fills which table cell (official-mebqat.md §5.1, §7).

- A dedicated job (``qat``, ``fomaml_qat``, ``pn_qat``: one network per bitwidth) is evaluated at every
  bitwidth, but fills only its own row, the bitwidth it was trained at.
- The (FP,FP) row of FOMAML+QAT / PN+QAT is the plain FOMAML / PN network (the same model; the paper's
  values are equal), unless a dedicated job trained at (FP,FP) exists.
- Every other job fills the rows it was evaluated at. A bitwidth a method cannot be evaluated at (ApDNN
  at 3 bits, AdaBits outside {2,3,4}) has no result and stays empty, like a cell with no job behind it.
"""

from __future__ import annotations

import pandas as pd

from .layout import is_dedicated, method_title, plain_of_dedicated, task_row

OWN_RUN = "run"


def plain_model_source(method: str) -> str:
    return f"plain {method_title(plain_of_dedicated()[method])} model"


def table_cells(combined: pd.DataFrame) -> pd.DataFrame:
    """From :func:`~mebqat.tables.collect.combine_seeds` rows, the filled cells: one row per
    (table, setup, method, bits_w, bits_a), with ``cell_source`` saying where the number comes from."""
    if combined.empty:
        return combined.assign(cell_source=pd.Series(dtype=str))
    own_row = [
        task_row(task) == (w, a) if is_dedicated(method) else True
        for method, task, w, a in zip(
            combined["method"], combined["cell_task"], combined["bits_w"], combined["bits_a"], strict=True
        )
    ]
    cells = combined[own_row].assign(cell_source=OWN_RUN)
    borrowed = []
    for dedicated, plain in plain_of_dedicated().items():
        fp = combined[(combined["method"] == plain) & (combined["bits_w"] == "FP") & (combined["bits_a"] == "FP")]
        for _, row in fp.iterrows():
            taken = cells[
                (cells["table"] == row["table"])
                & (cells["setup"] == row["setup"])
                & (cells["method"] == dedicated)
                & (cells["bits_w"] == "FP")
                & (cells["bits_a"] == "FP")
            ]
            if taken.empty:
                borrowed.append(
                    {
                        **row.to_dict(),
                        "method": dedicated,
                        "method_title": method_title(dedicated),
                        "cell_source": plain_model_source(dedicated),
                    }
                )
    if borrowed:
        cells = pd.concat([cells, pd.DataFrame(borrowed)], ignore_index=True)
    return cells.reset_index(drop=True)
