"""The capture thread keeps every frame of a file, in order, and hands over its errors."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
from conftest import index_of_frame

from livesegment.model.detector import processing_size_wh, to_model_rgb
from livesegment.video.capture import CaptureThread
from livesegment.video.sources import open_source


def test_every_frame_in_order_with_rgb_at_processing_size(video_factory):
    path = video_factory(20, (160, 120), 10.0)
    with CaptureThread(open_source(str(path)), long_side=64, queue_size=2) as capture:
        frames = list(capture.frames())
    assert [f.index for f in frames] == list(range(20))
    assert [index_of_frame(f.bgr) for f in frames] == list(range(20))
    assert all(f.rgb.shape == (48, 64, 3) and f.bgr.shape == (120, 160, 3) for f in frames)
    assert frames[5].time_s == pytest.approx(0.5)


def test_rgb_is_converted_once_from_bgr():
    bgr = np.zeros((10, 20, 3), np.uint8)
    bgr[..., 0] = 255  # pure blue in BGR
    rgb = to_model_rgb(bgr, 20)
    assert rgb[0, 0].tolist() == [0, 0, 255]
    assert processing_size_wh((640, 480), 256) == (256, 192)


@pytest.mark.parametrize("suffix, fourcc", [(".avi", "MJPG"), (".mp4", "mp4v")])
def test_frames_from_a_file_reach_the_model_as_rgb(tmp_path, suffix, fourcc):
    # The colour-order contract end to end: a file OpenCV decodes to BGR arrives as RGB.
    red_rgb, blue_rgb = (230, 20, 20), (20, 20, 230)
    picture_rgb = np.zeros((120, 160, 3), np.uint8)
    picture_rgb[:, :80], picture_rgb[:, 80:] = red_rgb, blue_rgb
    path = tmp_path / f"colours{suffix}"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, (160, 120))
    for _ in range(3):
        writer.write(cv2.cvtColor(picture_rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    with CaptureThread(open_source(str(path)), long_side=64, queue_size=2) as capture:
        frames = list(capture.frames())
    assert len(frames) == 3
    for frame in frames:
        left, right = frame.rgb[8:-8, 4:24].reshape(-1, 3), frame.rgb[8:-8, -24:-4].reshape(-1, 3)
        assert np.abs(left.mean(axis=0) - red_rgb).max() < 20, left.mean(axis=0)
        assert np.abs(right.mean(axis=0) - blue_rgb).max() < 20, right.mean(axis=0)


def test_slow_consumer_blocks_producer_not_drops(video_factory):
    path = video_factory(12, (160, 120), 10.0)
    with CaptureThread(open_source(str(path)), long_side=32, queue_size=1) as capture:
        seen = []
        for frame in capture.frames():
            threading.Event().wait(0.01)
            seen.append(frame.index)
    assert seen == list(range(12))


def test_stop_mid_stream_ends_the_thread(video_factory):
    path = video_factory(30, (160, 120), 10.0)
    with CaptureThread(open_source(str(path)), long_side=32, queue_size=1) as capture:
        for frame in capture.frames():
            if frame.index == 3:
                break
    assert not capture._thread.is_alive()


class ExplodingSource:
    info = None

    def __init__(self):
        self.calls = 0

    def read(self):
        self.calls += 1
        if self.calls > 2:
            raise OSError("device vanished")
        return self.calls - 1, 0.0, np.zeros((8, 8, 3), np.uint8)

    def release(self):
        pass


def test_capture_errors_reach_the_consumer():
    with CaptureThread(ExplodingSource(), long_side=8) as capture:
        got = []
        with pytest.raises(OSError, match="device vanished"):
            for frame in capture.frames():
                got.append(frame.index)
    assert got == [0, 1]


class FrozenCamera:
    """A driver that keeps returning its last buffer after the camera is gone."""

    def __init__(self):
        from livesegment.structures import VideoInfo
        from livesegment.video.sources import SourceRequest

        self.request = SourceRequest("camera", 0)
        self.info = VideoInfo("camera 0", (8, 8), 30.0, None, True)
        self.reopened_at: list[float] = []
        self._frame = np.zeros((8, 8, 3), np.uint8)
        self._index = 0

    def read(self):
        threading.Event().wait(0.01)
        self._index += 1
        if self._index < 5:  # a few real frames, then the same buffer forever
            self._frame = self._frame + 1
        return self._index, 0.0, self._frame.copy()

    def reopen(self):
        import time

        self.reopened_at.append(time.monotonic())
        self._index = 0
        return True

    def release(self):
        pass


def test_stale_frames_trigger_the_watchdog_within_two_seconds():
    import time

    from livesegment.video.capture import CapturePolicy

    camera = FrozenCamera()
    policy = CapturePolicy(newest_wins=True, reconnect=True, watchdog_s=2.0)
    started = time.monotonic()
    with CaptureThread(camera, long_side=8, policy=policy) as capture:
        for _ in capture.frames():
            if camera.reopened_at:
                break
            if time.monotonic() - started > 5:
                break
    assert camera.reopened_at, "the watchdog never fired"
    assert camera.reopened_at[0] - started < 2.6
    assert capture.stats.reconnect_attempts >= 1


def test_newest_frame_wins_and_counts_drops(video_factory):
    from livesegment.video.capture import CapturePolicy

    path = video_factory(30, (160, 120), 10.0)
    policy = CapturePolicy(newest_wins=True)
    with CaptureThread(open_source(str(path)), long_side=32, policy=policy) as capture:
        processed = []
        for frame in capture.frames():
            threading.Event().wait(0.02)
            processed.append(frame.index)
    assert processed == sorted(processed) and processed[-1] == 29
    assert capture.stats.captured == 30
    assert capture.stats.dropped == 30 - len(processed) > 0


@pytest.mark.parametrize("keep", [100, 3])
def test_skipped_frames_are_kept_and_handed_with_the_newest(video_factory, keep):
    from livesegment.video.capture import CapturePolicy

    path = video_factory(30, (160, 120), 10.0)
    policy = CapturePolicy(newest_wins=True, keep_skipped=keep)
    with CaptureThread(open_source(str(path)), long_side=32, policy=policy) as capture:
        handed: list[int] = []
        for frame in capture.frames():
            threading.Event().wait(0.02)
            handed += [older.index for older in capture.take_skipped()]
            assert capture.take_skipped() == [], "each frame is handed over once"
            handed.append(frame.index)
    # Every frame comes out, oldest first, unless more were skipped than kept.
    assert handed == sorted(handed) and handed[-1] == 29
    assert capture.stats.captured == 30
    assert capture.stats.dropped == 30 - len(handed)
    if keep == 100:
        assert handed == list(range(30))
        assert capture.stats.skipped > 0
