"""The zoomable, pannable picture view with the mask overlay, the working-region
frame and the mask tools' mouse handling."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSceneMouseEvent,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QStyleOptionGraphicsItem,
    QWidget,
)

from . import mask_tools
from .model.state import FACE_POINT_NAMES, AppState
from .qimage import to_pixmap, to_qimage
from .undo import Bounds, TileRecorder

TOOLS = ("brush", "eraser", "rect", "lasso", "frame", "face")
MIN_ZOOM, MAX_ZOOM = 0.01, 64.0
EMPTY_HINT = "Open a picture (Ctrl+O) or drop one here"
LIVE_OPACITY = 0.55  # live frames are a marked, see-through overlay, never the result


class ResultLayerItem(QGraphicsItem):
    """The result of a run over the picture, not yet applied: its pixels at their
    bounds (drawn at the layer's opacity by the state).  With a split at scene x, only
    the part right of it is drawn, and a line marks the split: before | after."""

    def __init__(self) -> None:
        super().__init__()
        self._image: QImage | None = None
        self._pos = (0, 0)
        self._size: tuple[int, int] | None = None
        self.split: float | None = None
        self.setZValue(3)  # above the mask overlay: a result is never hidden by it
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_pixels(
        self, pixels: np.ndarray | None, x: int = 0, y: int = 0, size: tuple[int, int] | None = None
    ) -> None:
        """Show ``pixels`` at (x, y), scaled to ``size`` = (w, h) when given (a new
        picture of another size is shown over the area it came from)."""
        self.prepareGeometryChange()
        self._image = None if pixels is None else to_qimage(pixels)
        self._pos = (x, y)
        self._size = size
        self.update()

    @property
    def has_image(self) -> bool:
        return self._image is not None

    def set_split(self, x: float | None) -> None:
        self.split = x
        self.update()

    def boundingRect(self) -> QRectF:
        if self._image is None:
            return QRectF()
        w, h = self._size or (self._image.width(), self._image.height())
        return QRectF(self._pos[0], self._pos[1], w, h)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if self._image is None:
            return
        rect = self.boundingRect()
        src = QRectF(0, 0, self._image.width(), self._image.height())
        if self.split is not None:
            cut = min(max(self.split, rect.left()), rect.right())
            src.setLeft((cut - rect.left()) * src.width() / max(rect.width(), 1e-6))
            rect.setLeft(cut)
        painter.setRenderHint(
            QPainter.RenderHint.SmoothPixmapTransform, painter.worldTransform().m11() < 1.0
        )
        if rect.width() > 0:
            painter.drawImage(rect, self._image, src)
        if self.split is not None:
            pen = QPen(QColor(255, 255, 255), 2)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.drawLine(QPointF(rect.left(), rect.top()), QPointF(rect.left(), rect.bottom()))


class ArrayImageItem(QGraphicsItem):
    """Paints a QImage that shares memory with a NumPy array (no copies on edits:
    the owner calls ``changed(bounds)`` and only that area is repainted)."""

    def __init__(self) -> None:
        super().__init__()
        self._array: np.ndarray | None = None
        self._image: QImage | None = None
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_array(self, array: np.ndarray | None, colour: QColor | None = None) -> None:
        self.prepareGeometryChange()
        self._array = array
        if array is None or array.size == 0:
            self._image = None
            return
        h, w = array.shape[:2]
        if array.ndim == 3:
            img = QImage(array.data, w, h, array.strides[0], QImage.Format.Format_RGB888)
        else:
            img = QImage(array.data, w, h, array.strides[0], QImage.Format.Format_Indexed8)
            c = colour or QColor(255, 0, 80)
            # 0 = transparent, 255 = colour, soft edges in between
            img.setColorTable([QColor(c.red(), c.green(), c.blue(), i).rgba() for i in range(256)])
        self._image = img

    def boundingRect(self) -> QRectF:
        if self._image is None:
            return QRectF()
        return QRectF(0, 0, self._image.width(), self._image.height())

    def changed(self, bounds: Bounds | None) -> None:
        if bounds is None:
            self.update()
        else:
            x0, y0, x1, y1 = bounds
            self.update(QRectF(x0, y0, x1 - x0, y1 - y0))

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if self._image is None:
            return
        r = option.exposedRect.toAlignedRect().intersected(self._image.rect())
        if r.isEmpty():
            return
        painter.setRenderHint(
            QPainter.RenderHint.SmoothPixmapTransform, painter.worldTransform().m11() < 1.0
        )
        painter.drawImage(QRectF(r), self._image, QRectF(r))


class RegionFrameItem(QGraphicsItem):
    """The square working region: drag inside to move, drag the corner to scale.
    It changes the state only on release (one update per gesture)."""

    HANDLE_PX = 14  # on screen

    def __init__(self, state: AppState) -> None:
        super().__init__()
        self.state = state
        self.rect = QRectF()
        self._drag: tuple[str, QPointF, QRectF] | None = None
        self.setZValue(10)
        self.setAcceptHoverEvents(True)

    def set_region(self, region: tuple[int, int, int] | None) -> None:
        self.prepareGeometryChange()
        self.rect = (
            QRectF() if region is None else QRectF(region[0], region[1], region[2], region[2])
        )
        self.setVisible(region is not None)
        self.update()

    def _handle_size(self) -> float:
        view_scale = self.scene().views()[0].transform().m11() if self.scene() else 1.0
        return self.HANDLE_PX / max(view_scale, 1e-6)

    def boundingRect(self) -> QRectF:
        m = self._handle_size() if self.scene() else 0
        return self.rect.adjusted(-m, -m, m, m)

    def shape(self) -> QPainterPath:
        p = QPainterPath()
        p.addRect(self.boundingRect())
        return p

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if self.rect.isEmpty() or len(self.state.face_points) == 3:
            return  # three face points: the run works on the aligned face, not here
        pen = QPen(QColor(255, 220, 0), 2)
        pen.setCosmetic(True)
        pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(self.rect)
        hs = self._handle_size()
        painter.setBrush(QBrush(QColor(255, 220, 0)))
        painter.drawRect(QRectF(self.rect.right() - hs / 2, self.rect.bottom() - hs / 2, hs, hs))

    def on_corner(self, pos: QPointF) -> bool:
        hs = self._handle_size()
        return abs(pos.x() - self.rect.right()) <= hs and abs(pos.y() - self.rect.bottom()) <= hs

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        mode = "scale" if self.on_corner(event.pos()) else "move"
        if mode == "move" and not self.rect.contains(event.pos()):
            event.ignore()
            return
        self._drag = (mode, event.pos(), QRectF(self.rect))
        event.accept()

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._drag is None:
            return
        mode, start, rect = self._drag
        d = event.pos() - start
        x, y, side = rect.x(), rect.y(), rect.width()
        if mode == "move":
            x, y = x + d.x(), y + d.y()
        else:
            side = max(8.0, side + max(d.x(), d.y()))
        x, y, side = self.state.clamp_region(x, y, side)
        self.prepareGeometryChange()
        self.rect = QRectF(x, y, side, side)
        self.update()

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._drag is not None:
            self._drag = None
            self.state.set_region(self.rect.x(), self.rect.y(), self.rect.width())


class FacePointsItem(QGraphicsItem):
    """The face points over the picture (L, R, M: left eye, right eye, mouth) and, once
    they make a face, the aligned square the face prior will see (a face whose points
    cannot be one is drawn with a red line between them)."""

    RADIUS_PX = 7  # on screen

    def __init__(self, state: AppState) -> None:
        super().__init__()
        self.state = state
        self.points: list[tuple[float, float]] = []
        self.square: list[tuple[float, float]] = []
        self.setZValue(12)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)  # the canvas handles clicks

    def radius(self) -> float:
        """The points' radius in picture pixels (constant on screen)."""
        view_scale = self.scene().views()[0].transform().m11() if self.scene() else 1.0
        return self.RADIUS_PX / max(view_scale, 1e-6)

    def set_points(self, points: list[tuple[float, float]]) -> None:
        self.prepareGeometryChange()
        self.points = [(float(x), float(y)) for x, y in points]
        face = self.state.face_alignment()
        self.square = [] if face is None else [(float(x), float(y)) for x, y in face.corners()]
        self.update()

    def boundingRect(self) -> QRectF:
        xy = self.points + self.square
        if not xy:
            return QRectF()
        r = self.radius() * 3 if self.scene() else 0.0
        xs, ys = [p[0] for p in xy], [p[1] for p in xy]
        return QRectF(
            min(xs) - r, min(ys) - r, max(xs) - min(xs) + 2 * r, max(ys) - min(ys) + 2 * r
        )

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if not self.points:
            return
        problem = len(self.points) == 3 and not self.square
        if self.square:
            pen = QPen(QColor(0, 230, 120), 2)
            pen.setCosmetic(True)
            pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            path = QPainterPath()
            path.moveTo(*self.square[0])
            for q in self.square[1:]:
                path.lineTo(*q)
            path.closeSubpath()
            painter.drawPath(path)
        line = QPen(QColor(255, 60, 60) if problem else QColor(0, 230, 120), 1)
        line.setCosmetic(True)
        painter.setPen(line)
        for a, b in zip(self.points, self.points[1:], strict=False):
            painter.drawLine(QPointF(*a), QPointF(*b))
        r = self.radius()
        font = painter.font()
        font.setPointSizeF(max(1.0, r * 1.4))
        painter.setFont(font)
        for (x, y), name in zip(self.points, FACE_POINT_NAMES, strict=False):
            painter.setBrush(QBrush(QColor(0, 230, 120, 170)))
            painter.drawEllipse(QPointF(x, y), r, r)
            painter.drawText(QPointF(x + r * 1.2, y - r * 1.2), name[0].upper())

    def point_at(self, pos: QPointF) -> int | None:
        """The index of the point under ``pos`` (picture coordinates), or None."""
        r = self.radius() * 1.5
        best = None
        for i, (x, y) in enumerate(self.points):
            d = ((pos.x() - x) ** 2 + (pos.y() - y) ** 2) ** 0.5
            if d <= r and (best is None or d < best[1]):
                best = (i, d)
        return None if best is None else best[0]


class Canvas(QGraphicsView):
    zoom_changed = Signal(float)
    tool_changed = Signal(str)
    brush_changed = Signal(int, float)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setAccessibleName("Picture canvas")
        self.setScene(QGraphicsScene(self))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setBackgroundBrush(QColor(48, 48, 48))
        self.setMouseTracking(True)
        self.setAcceptDrops(False)  # the main window takes drops
        self.image_item = ArrayImageItem()
        self.mask_item = ArrayImageItem()
        self.mask_item.setZValue(1)
        self.result_item = ResultLayerItem()
        # a live frame: translucent inside the region, outlined and labelled "Live
        # preview" so it is never taken for the result
        self.preview_item = QGraphicsPixmapItem()
        self.preview_item.setZValue(5)
        self.preview_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.preview_item.setOpacity(LIVE_OPACITY)
        self.preview_item.setVisible(False)
        self.preview_outline = QGraphicsRectItem()
        opan = QPen(QColor(0, 200, 255), 2)
        opan.setCosmetic(True)
        opan.setStyle(Qt.PenStyle.DotLine)
        self.preview_outline.setPen(opan)
        self.preview_outline.setZValue(6)
        self.preview_outline.setVisible(False)
        self.preview_label = QGraphicsSimpleTextItem("Live preview")
        self.preview_label.setBrush(QColor(0, 200, 255))
        self.preview_label.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.preview_label.setZValue(6)
        self.preview_label.setVisible(False)
        self.split_mode = False
        self.frame_item = RegionFrameItem(state)
        self.face_item = FacePointsItem(state)
        self.cursor_item = QGraphicsEllipseItem()
        cpen = QPen(QColor(255, 255, 255), 1)
        cpen.setCosmetic(True)
        self.cursor_item.setPen(cpen)
        self.cursor_item.setZValue(20)
        self.cursor_item.setVisible(False)
        self.rubber = QGraphicsPathItem()
        rpen = QPen(QColor(0, 200, 255), 1)
        rpen.setCosmetic(True)
        self.rubber.setPen(rpen)
        self.rubber.setZValue(21)
        for item in (
            self.image_item,
            self.mask_item,
            self.result_item,
            self.preview_item,
            self.preview_outline,
            self.preview_label,
            self.frame_item,
            self.face_item,
            self.cursor_item,
            self.rubber,
        ):
            self.scene().addItem(item)
        self.tool = "brush"
        self.brush_size = 40
        self.brush_hardness = 0.8
        self.mask_colour = QColor(255, 0, 80)
        self._space = False
        self._pan: QPointF | None = None
        # (recorder, last point, erase)
        self._stroke: tuple[TileRecorder, tuple[float, float], bool] | None = None
        self._shape_points: list[QPointF] = []
        self._shape_erase = False
        self._splitting = False
        self._face_drag: int | None = None  # the face point being dragged
        self._face_before: list[tuple[float, float]] = []  # the points when it was grabbed
        state.picture_replaced.connect(self._on_picture_replaced)
        state.face_points_changed.connect(self.face_item.set_points)
        state.face_points_changed.connect(lambda _p: self.frame_item.update())
        state.resolution_changed.connect(lambda _r: self.face_item.set_points(state.face_points))
        state.picture_changed.connect(self.image_item.changed)
        state.mask_changed.connect(self.mask_item.changed)
        state.region_changed.connect(self.frame_item.set_region)
        state.layer_changed.connect(self.show_layer)
        self.set_tool("brush")

    # --- picture and overlay --------------------------------------------------
    def _on_picture_replaced(self) -> None:
        pic = self.state.picture
        self.image_item.set_array(None if pic is None else pic.pixels)
        self.mask_item.set_array(self.state.mask, self.mask_colour)
        w, h = self.state.size
        self.scene().setSceneRect(QRectF(-w * 0.1, -h * 0.1, w * 1.2, h * 1.2))
        self.result_item.set_split(None)
        self.show_layer()
        self.fit()
        self.viewport().update()  # the empty-canvas hint goes

    def show_preview(self, rgb: np.ndarray, region: tuple[int, int, int]) -> None:
        """The live frame of a run, drawn translucent and marked over its region."""
        x, y, side = region
        self.preview_item.setPixmap(to_pixmap(rgb))
        self.preview_item.setPos(x, y)
        self.preview_item.setScale(side / max(1, rgb.shape[1]))
        self.preview_outline.setRect(QRectF(x, y, side, side))
        self.preview_label.setPos(x + 2, y + 2)
        for item in (self.preview_item, self.preview_outline, self.preview_label):
            item.setVisible(True)

    def hide_preview(self) -> None:
        for item in (self.preview_item, self.preview_outline, self.preview_label):
            item.setVisible(False)

    @property
    def live_preview_shown(self) -> bool:
        return self.preview_item.isVisible()

    # --- the result layer and the split view ------------------------------------
    def show_layer(self) -> None:
        """The state's result layer over the picture (hidden while "Show original")."""
        st = self.state
        pixels = None if st.show_original else st.layer_pixels()
        if pixels is None or st.layer is None:
            self.result_item.set_pixels(None)
        else:
            x0, y0, x1, y1 = st.layer.bounds
            size = (x1 - x0, y1 - y0) if st.layer.picture is not None else None
            self.result_item.set_pixels(pixels, x0, y0, size)
        self._update_split()

    def set_split_mode(self, on: bool) -> None:
        """Before | after on the canvas: the layer is drawn right of a line that
        follows the pointer (left of it, the picture as it is)."""
        self.split_mode = bool(on)
        if on and self.result_item.split is None:
            self.result_item.set_split(self.state.size[0] / 2)
        self._update_split()

    def set_split(self, x: float) -> None:
        if self.split_mode:
            self.result_item.set_split(x)

    def _update_split(self) -> None:
        if not self.split_mode:
            self.result_item.set_split(None)
        elif self.result_item.split is None:
            self.result_item.set_split(self.state.size[0] / 2)

    def drawForeground(self, painter: QPainter, rect: QRectF | QRect) -> None:
        super().drawForeground(painter, rect)
        if self.state.has_picture:
            return
        painter.save()  # the empty canvas says what to do, in view coordinates
        painter.resetTransform()
        painter.setPen(QColor(190, 190, 190))
        font = painter.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        painter.setFont(font)
        painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter, EMPTY_HINT)
        painter.restore()

    def set_mask_opacity(self, opacity: float) -> None:
        self.mask_item.setOpacity(min(1.0, max(0.0, opacity)))

    # --- zoom and pan ---------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, z: float) -> None:
        z = min(MAX_ZOOM, max(MIN_ZOOM, z))
        f = z / self.zoom()
        self.scale(f, f)
        self.zoom_changed.emit(self.zoom())
        self._update_cursor_item(None)

    def zoom_by(self, factor: float) -> None:
        self.set_zoom(self.zoom() * factor)

    def fit(self) -> None:
        w, h = self.state.size
        if w and h:
            self.fitInView(QRectF(0, 0, w, h), Qt.AspectRatioMode.KeepAspectRatio)
            self.zoom_changed.emit(self.zoom())

    def actual_size(self) -> None:
        self.set_zoom(1.0)

    def wheelEvent(self, event: QWheelEvent) -> None:
        dy = event.angleDelta().y()
        if dy:
            self.zoom_by(1.25 ** (dy / 120))
        event.accept()

    # --- tools ----------------------------------------------------------------
    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(tool)
        self.tool = tool
        self.frame_item.setAcceptedMouseButtons(
            Qt.MouseButton.LeftButton if tool == "frame" else Qt.MouseButton.NoButton
        )
        self.cursor_item.setVisible(tool in ("brush", "eraser"))
        self.viewport().setCursor(
            Qt.CursorShape.SizeAllCursor if tool == "frame" else Qt.CursorShape.CrossCursor
        )
        self.face_item.setVisible(True)
        self.tool_changed.emit(tool)

    def set_brush(self, size: int | None = None, hardness: float | None = None) -> None:
        if size is not None:
            self.brush_size = int(min(mask_tools.MAX_BRUSH, max(mask_tools.MIN_BRUSH, size)))
        if hardness is not None:
            self.brush_hardness = float(min(1.0, max(0.0, hardness)))
        self._update_cursor_item(None)
        self.brush_changed.emit(self.brush_size, self.brush_hardness)

    def grow_brush(self, factor: float) -> None:
        step = (
            max(1, round(self.brush_size * (factor - 1)))
            if factor > 1
            else -max(1, round(self.brush_size * (1 - factor)))
        )
        self.set_brush(self.brush_size + step)

    def _update_cursor_item(self, scene_pos: QPointF | None) -> None:
        c = self.cursor_item.rect().center() if scene_pos is None else scene_pos
        r = self.brush_size / 2
        self.cursor_item.setRect(QRectF(c.x() - r, c.y() - r, 2 * r, 2 * r))

    # --- keyboard: space pans ---------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.set_tool(self.tool)
            event.accept()
            return
        super().keyReleaseEvent(event)

    # --- mouse ----------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.MiddleButton or (
            self._space and event.button() == Qt.MouseButton.LeftButton
        ):
            self._pan = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if (
            not self.state.has_picture
            or event.button() != Qt.MouseButton.LeftButton
            or self.tool == "frame"
        ):
            super().mousePressEvent(event)
            return
        p = self.mapToScene(event.position().toPoint())
        if self.tool == "face":
            # on a point: drag it; elsewhere: the next point (left eye, right eye, mouth)
            self._face_before = list(self.state.face_points)  # one undo step per click/drag
            self._face_drag = self.face_item.point_at(p)
            if self._face_drag is None and self.state.add_face_point(p.x(), p.y()):
                self._face_drag = len(self.state.face_points) - 1
            event.accept()
            return
        if self.split_mode and self.result_item.has_image:
            self._splitting = True  # drag the before | after line, paint nothing
            self.set_split(p.x())
            event.accept()
            return
        erase = bool(event.modifiers() & Qt.KeyboardModifier.AltModifier)
        if self.tool in ("brush", "eraser"):
            rec = self.state.mask_recorder()
            erase = erase or self.tool == "eraser"
            self._stroke = (rec, (p.x(), p.y()), erase)
            b = mask_tools.stamp(
                self.state.mask, rec, p.x(), p.y(), self.brush_size, self.brush_hardness, erase
            )
            self.state.notify_mask(b)
        else:
            self._shape_points = [p]
            self._shape_erase = erase
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        p = self.mapToScene(event.position().toPoint())
        if self._pan is not None:
            d = event.position() - self._pan
            self._pan = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(d.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(d.y()))
            event.accept()
            return
        self._update_cursor_item(p)
        if self._face_drag is not None:
            self.state.move_face_point(self._face_drag, p.x(), p.y())
            event.accept()
            return
        if self._splitting:
            self.set_split(p.x())
            event.accept()
            return
        if self._stroke is not None:
            rec, last, erase = self._stroke
            b = mask_tools.segment(
                self.state.mask,
                rec,
                last,
                (p.x(), p.y()),
                self.brush_size,
                self.brush_hardness,
                erase,
            )
            self._stroke = (rec, (p.x(), p.y()), erase)
            self.state.notify_mask(b)
            event.accept()
            return
        if self._shape_points:
            if self.tool == "lasso":
                self._shape_points.append(p)
            else:
                self._shape_points[1:] = [p]
            self._show_rubber()
            event.accept()
            return
        super().mouseMoveEvent(event)

    def _shape_polygon(self) -> list[tuple[float, float]]:
        pts = self._shape_points
        if self.tool == "rect":
            if len(pts) < 2:
                return []
            a, b = pts[0], pts[-1]
            return [(a.x(), a.y()), (b.x(), a.y()), (b.x(), b.y()), (a.x(), b.y())]
        return [(q.x(), q.y()) for q in pts]

    def _show_rubber(self) -> None:
        path = QPainterPath()
        poly = self._shape_polygon()
        if poly:
            path.moveTo(*poly[0])
            for q in poly[1:]:
                path.lineTo(*q)
            path.closeSubpath()
        self.rubber.setPath(path)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan is not None and event.button() in (
            Qt.MouseButton.MiddleButton,
            Qt.MouseButton.LeftButton,
        ):
            self._pan = None
            self.viewport().setCursor(
                Qt.CursorShape.OpenHandCursor if self._space else Qt.CursorShape.CrossCursor
            )
            event.accept()
            return
        if self._face_drag is not None:
            moved = self._face_drag < len(self._face_before)
            self._face_drag = None
            self.state.commit_face_points(
                self._face_before, "Move face point" if moved else "Place face point"
            )
            event.accept()
            return
        if self._splitting:
            self._splitting = False
            event.accept()
            return
        if self._stroke is not None:
            rec, _, erase = self._stroke
            self._stroke = None
            self.state.commit_mask("Erase mask" if erase else "Paint mask", rec)
            event.accept()
            return
        if self._shape_points:
            poly = self._shape_polygon()
            self._shape_points = []
            self.rubber.setPath(QPainterPath())
            self.apply_polygon(poly, self._shape_erase)
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def apply_polygon(self, poly: list[tuple[float, float]], erase: bool = False) -> bool:
        name = "Rectangle" if self.tool == "rect" else "Lasso"
        return self.state.push_mask_edit(
            f"{name} {'erase' if erase else 'select'}",
            lambda rec: mask_tools.polygon(self.state.mask, rec, poly, erase),
        )
