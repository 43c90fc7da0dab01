"""Window-free parts of the app: settings, mask tools, tile undo, app state."""

from __future__ import annotations

import numpy as np

from dgp_studio import mask_tools
from dgp_studio.settings import Settings, default_engine_threads


def test_settings_round_trip_in_temp_config():
    s = Settings.load()
    assert s.engine_threads == default_engine_threads()
    s.engine_threads = 3
    s.device = "cpu"
    s.hub_repos = {"biggan128": "me/mine"}
    path = s.save()
    assert path.name == "settings.toml" and "userdirs" in str(path)
    again = Settings.load()
    assert again.engine_threads == 3 and again.hub_repos["biggan128"] == "me/mine"
    path.write_text("engine_threads = 'many'\n[broken")
    assert Settings.load().engine_threads == default_engine_threads()


def test_brush_stamps_and_clipping():
    m = np.zeros((50, 50), np.uint8)
    b = mask_tools.segment(m, None, (-10, 25), (60, 25), 10, 1.0, erase=False)
    assert b == (0, 20, 50, 30)
    assert m[25].min() == 255
    soft = mask_tools.brush_stamp(21, 0.0)
    assert soft[10, 10] == 255 and soft[10, 0] < 40
    mask_tools.stamp(m, None, 25, 25, 6, 1.0, erase=True)
    assert m[25, 25] == 0


def test_state_undo_tiles(qtbot):
    from dgp_studio.image_files import Picture
    from dgp_studio.model.state import AppState

    st = AppState()
    st.open_picture(Picture(np.zeros((600, 700, 3), np.uint8)))
    rec = st.mask_recorder()
    mask_tools.segment(st.mask, rec, (10, 10), (20, 20), 8, 1.0, False)
    assert st.commit_mask("Paint", rec)
    cmd = st.undo_stack.command(0)
    assert len(cmd.tile_data) == 1  # one 256² tile, not the whole mask
    st.undo_stack.undo()
    assert not st.mask.any()
    st.undo_stack.redo()
    assert st.mask.any()
    x, y, side = st.default_region()
    assert x <= 6 and y <= 6 and side >= 128
