"""A two-column tree of labelled facts that stays readable in a narrow dock."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QTreeWidget

# Below this viewport width a label and its value no longer fit side by side: the value goes under it.
STACK_BELOW = 230
_PAD = 4


_ZWSP = "\u200b"


def _breakable(text: str) -> str:
    """The text as drawn: UIDs and file names may break after their dots, underscores and slashes."""
    for mark in "._/\\-":
        text = text.replace(mark, mark + _ZWSP)
    return text


def _text_flags(metrics, text: str, width: int) -> Qt.TextFlag:
    # Words wrap at spaces (and the breaks ``_breakable`` adds); a token still wider than the row wraps
    # anywhere, so the whole value stays visible.
    longest = max((metrics.horizontalAdvance(word) for word in text.replace(_ZWSP, " ").split()), default=0)
    return Qt.TextFlag.TextWrapAnywhere if longest > width else Qt.TextFlag.TextWordWrap


class _FactDelegate(QStyledItemDelegate):
    """Wrapped row heights (QTreeView measures rows as one line), whole values, the stacked layout."""

    def __init__(self, view: FactsTree) -> None:
        super().__init__(view)
        self.view = view

    def _is_fact(self, index) -> bool:
        return index.parent().isValid() and not self.view.isFirstColumnSpanned(index.row(), index.parent())

    def _width(self, index) -> int:
        """Width for the text of ``index`` (in the stacked layout: of its value, under the label)."""
        view = self.view
        spanned = view.isFirstColumnSpanned(index.row(), index.parent())
        width = view.viewport().width() if view.stacked or spanned else view.columnWidth(index.column())
        if index.column() == 0 and index.parent().isValid():
            width -= view.indentation()
        if view.stacked and self._is_fact(index):
            width -= _PAD
        return max(1, width - 2 * _PAD)

    def initStyleOption(self, option, index) -> None:  # Qt override
        super().initStyleOption(option, index)
        if index.column() == 0 and self._is_fact(index):
            # A label stays level with the first line of a value that wraps.
            option.displayAlignment = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop

    @staticmethod
    def _value(index) -> str:
        return _breakable(str(index.siblingAtColumn(1).data() or ""))

    def sizeHint(self, option, index):  # Qt override
        size = super().sizeHint(option, index)
        metrics = option.fontMetrics
        stacked = self.view.stacked and self._is_fact(index)
        text = self._value(index) if stacked or index.column() == 1 else str(index.data() or "")
        if not text:
            return size
        if index.column() == 0 and not stacked and index.parent().isValid():
            room = self.view.columnWidth(0) - self.view.indentation()
            if metrics.horizontalAdvance(text) <= room:  # the column was sized to fit its labels
                return size
        width = self._width(index)
        rect = metrics.boundingRect(0, 0, width, 100_000, _text_flags(metrics, text, width), text)
        height = rect.height() + _PAD + (metrics.height() + _PAD if stacked else 0)
        size.setHeight(max(size.height(), height))
        return size

    def paint(self, painter, option, index) -> None:
        stacked = self.view.stacked and self._is_fact(index)
        if not (stacked or (self._is_fact(index) and index.column() == 1)):
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget else self.view.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        metrics = opt.fontMetrics
        rect = opt.rect.adjusted(_PAD, _PAD // 2 if stacked else 0, -_PAD, 0)
        painter.save()
        painter.setPen(opt.palette.color(role))
        if stacked:
            bold = painter.font()
            bold.setBold(True)
            painter.setFont(bold)
            label = metrics.elidedText(str(index.data() or ""), Qt.TextElideMode.ElideRight, rect.width())
            painter.drawText(QRect(rect.left(), rect.top(), rect.width(), metrics.height()), 0, label)
            painter.setFont(opt.font)
            rect = QRect(rect.left() + _PAD, rect.top() + metrics.height() + _PAD // 2, self._width(index), 100_000)
        value = self._value(index)
        painter.drawText(rect, int(_text_flags(metrics, value, rect.width())), value)
        painter.restore()


class FactsTree(QTreeWidget):
    """Sections of label / value rows; values wrap, copy with Ctrl+C, and stack under labels when narrow."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.stacked = False
        self.setHeaderLabels(["", ""])
        self.setHeaderHidden(True)
        # Sections need no expand arrows in a narrow dock, and rows have their own heights.
        self.setRootIsDecorated(False)
        self.setIndentation(10)
        self.setWordWrap(True)
        self.setUniformRowHeights(False)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.header().setMinimumSectionSize(20)
        self.setItemDelegate(_FactDelegate(self))
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        copy = QAction("Copy value", self)
        copy.setShortcut(QKeySequence.StandardKey.Copy)
        copy.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        copy.triggered.connect(self.copy_value)
        self.addAction(copy)

    def fit_columns(self) -> None:
        """Lays the rows out for the current width: side by side, or values under their labels."""
        width = self.viewport().width()
        self.stacked = width < STACK_BELOW
        self.setColumnHidden(1, self.stacked)
        if self.stacked:
            self.setColumnWidth(0, width)
        else:
            # Labels get what they need up to half the width; values the rest (a hidden header does
            # not stretch its last section), so they wrap instead of running out of the view.
            self.resizeColumnToContents(0)
            label = min(self.columnWidth(0), max(40, width // 2))
            self.setColumnWidth(0, label)
            self.setColumnWidth(1, max(20, width - label))
        self.doItemsLayout()  # rows take their new heights

    def resizeEvent(self, event) -> None:  # noqa: D102 (Qt override)
        super().resizeEvent(event)
        self.fit_columns()

    def copy_value(self) -> str:
        """Puts the selected row's whole value on the clipboard and returns it."""
        item = self.currentItem()
        text = "" if item is None else item.text(1)
        if text:
            QGuiApplication.clipboard().setText(text)
        return text
