"""The contract's label conventions: what training grids, eval, the runtime and the server lay out alike."""

import numpy as np

from gantool.contract import GRID_COLUMNS, GRID_IMAGES, cycle_labels, grid_columns, grid_labels


def test_grid_labels_give_one_row_per_label():
    assert grid_labels(range(3), 2).tolist() == [0, 0, 1, 1, 2, 2]
    assert grid_labels([7, 3]).tolist() == [7] * GRID_COLUMNS + [3] * GRID_COLUMNS
    assert grid_labels(range(2)).dtype == np.int64


def test_cycled_labels_and_grid_columns():
    assert cycle_labels(5, 3).tolist() == [0, 1, 2, 0, 1] and cycle_labels(5, 3).dtype == np.int64
    assert grid_columns(True, per_label=5) == 5
    assert grid_columns(False) == GRID_COLUMNS and grid_columns(False, n=3) == 3 and GRID_IMAGES % GRID_COLUMNS == 0
