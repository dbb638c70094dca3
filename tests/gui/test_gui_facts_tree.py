"""The study facts stay whole and readable at any dock width."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QTreeWidgetItem

from medae.gui.facts_tree import STACK_BELOW, FactsTree

UID = "1.2.826.0.1.3680043.8.498.52555781424011117034413649751226560"


def _tree(qtbot, width: int) -> tuple[FactsTree, QTreeWidgetItem, QTreeWidgetItem]:
    tree = FactsTree()
    qtbot.addWidget(tree)
    top = QTreeWidgetItem(["Study", ""])
    tree.addTopLevelItem(top)
    top.setFirstColumnSpanned(True)
    short = QTreeWidgetItem(["Date", "20240102"])
    uid = QTreeWidgetItem(["Study UID", UID])
    top.addChildren([short, uid])
    top.setExpanded(True)
    tree.resize(width, 400)
    tree.show()
    qtbot.waitExposed(tree)
    tree.fit_columns()
    return tree, short, uid


def test_wide_tree_puts_values_beside_labels_and_wraps_long_ones(qtbot):
    tree, short, uid = _tree(qtbot, 420)
    assert not tree.stacked and not tree.isColumnHidden(1)
    width = tree.viewport().width()
    assert tree.columnWidth(0) + tree.columnWidth(1) <= width  # nothing runs out of the view
    metrics = tree.fontMetrics()
    assert tree.visualItemRect(short).height() < 2 * metrics.height()
    # The UID does not fit on one line of the value column: its row grows instead of cutting it.
    lines = -(-metrics.horizontalAdvance(UID) // tree.columnWidth(1))
    assert lines >= 2
    assert tree.visualItemRect(uid).height() >= lines * metrics.height()


def test_narrow_tree_stacks_values_under_labels(qtbot):
    tree, short, uid = _tree(qtbot, STACK_BELOW - 80)
    assert tree.stacked and tree.isColumnHidden(1)
    assert tree.columnWidth(0) == tree.viewport().width()
    metrics = tree.fontMetrics()
    # Label line plus value line(s): each value row is taller than one line, the UID taller still.
    assert tree.visualItemRect(short).height() >= 2 * metrics.height()
    lines = -(-metrics.horizontalAdvance(UID) // tree.viewport().width())
    assert tree.visualItemRect(uid).height() >= (1 + lines) * metrics.height()
    tree.resize(420, 400)
    qtbot.waitUntil(lambda: not tree.stacked)
    assert not tree.isColumnHidden(1)


def test_copy_value_puts_the_whole_value_on_the_clipboard(qtbot):
    tree, _short, uid = _tree(qtbot, 150)
    tree.setCurrentItem(uid)
    assert tree.copy_value() == UID
    assert QGuiApplication.clipboard().text() == UID
