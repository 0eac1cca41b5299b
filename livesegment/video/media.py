"""Video files through FFmpeg (PyAV): a reader that survives damaged input and a writer whose
files survive the process being killed.

OpenCV's reader stops silently at the first undecodable packet and invents timestamps from a
frame counter; its writer cannot write H.264 from the pip wheel and leaves unplayable files
behind a crash. PyAV gives us the stream's own timestamps, per-packet error handling, and
fragmented MP4.
"""

from __future__ import annotations

import errno
import heapq
import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.sidedata.sidedata import SideDataContainer

from livesegment.errors import OutputError, SourceError, UsageError
from livesegment.video.orientation import UPRIGHT, Orientation

log = logging.getLogger(__name__)

# Codec names users type -> FFmpeg encoders, best first.
CODECS = {
    "h264": ("libx264", "h264"),
    "hevc": ("libx265", "hevc"),
    "mpeg4": ("mpeg4",),
    "mjpeg": ("mjpeg",),
    "vp9": ("libvpx-vp9",),
}
CONTAINER_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi")
# A fragment per keyframe (one a second, see KEYFRAME_INTERVAL_S) and a flush per packet: a
# killed process leaves a file that plays up to its last complete fragment. Shorter fragments
# (one per frame) make FFmpeg guess sample durations and garble timestamps.
FRAGMENTED_MP4 = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}
KEYFRAME_INTERVAL_S = 1.0
# Used when the source does not report a frame rate (some containers, live rates not measured).
FALLBACK_FPS = 30
AAC_PRIMING_SAMPLES = 1024
# Frames held back to put out-of-order timestamps right (see _decoded_in_time_order).
REORDER_DEPTH = 4


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """One decoded picture: its index in the source, its time from the stream, and its
    (H, W, 3) uint8 BGR pixels upright, as a player shows them (display matrix applied)."""

    index: int
    time_s: float
    bgr: np.ndarray


def rational_rate(stream) -> Fraction | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and 0 < float(rate) < 1000:
            return Fraction(rate.numerator, rate.denominator)
    return None


class MediaReader:
    """Decodes a file's video stream, skipping undecodable packets and counting them.

    Args:
        path: the file.
        start_s: first time to return (seeks there).
        end_s: stop before this time.
        stride: return every Nth decoded frame.
    """

    def __init__(
        self, path: Path, start_s: float = 0.0, end_s: float | None = None, stride: int = 1
    ):
        self.path = Path(path)
        self.start_s, self.end_s, self.stride = start_s, end_s, stride
        try:
            self.container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as error:
            raise SourceError(
                f"{self.path}: not a readable video ({_reason(error)}); check the file"
            ) from error
        if not self.container.streams.video:
            self.container.close()
            raise SourceError(f"{self.path}: has no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.rate = rational_rate(self.stream)
        self.time_base = self.stream.time_base or Fraction(1, 90000)
        self.undecodable = 0
        self.decoded = 0
        # The display matrix of the latest frame returned (phones record landscape pixels
        # and a rotation); every frame is turned upright by its own.
        self.orientation = UPRIGHT
        self._orientations: dict[bytes, Orientation] = {}
        self._frames = self._decode()

    @property
    def has_audio(self) -> bool:
        return bool(self.container.streams.audio)

    @property
    def claimed_frames(self) -> int | None:
        return self.stream.frames or None

    def _seek(self) -> None:
        if self.start_s > 0:
            target = int(self.start_s / self.time_base)
            try:
                self.container.seek(target, stream=self.stream, backward=True)
            except av.error.FFmpegError:
                log.info("%s: cannot seek; decoding from the start", self.path)

    def _decoded_in_time_order(self) -> Iterator[tuple[float, av.VideoFrame]]:
        """Decoded frames, each with its presentation time.

        Decoders output frames in display order, but AVI files with packed B-frames attach
        the timestamps out of order (…, 42, 44, 43, …). The set of timestamps is right, so each
        frame takes the smallest of a few pending ones.
        """
        pending_frames: deque[av.VideoFrame] = deque()
        pending_times: list[float] = []
        previous_time = -1.0
        for packet in self.container.demux(self.stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                self.undecodable += 1
                continue
            for frame in frames:
                self.decoded += 1
                if frame.time is not None:
                    time_s = float(frame.time)
                else:  # no timestamp at all: one frame period after the previous one
                    step = 1 / float(self.rate) if self.rate else 0.0
                    time_s = max([previous_time, *pending_times]) + step
                previous_time = time_s
                heapq.heappush(pending_times, time_s)
                pending_frames.append(frame)
                if len(pending_frames) > REORDER_DEPTH:
                    yield heapq.heappop(pending_times), pending_frames.popleft()
        while pending_frames:
            yield heapq.heappop(pending_times), pending_frames.popleft()

    def _decode(self) -> Iterator[DecodedFrame]:
        self._seek()
        kept = 0
        for time_s, frame in self._decoded_in_time_order():
            if time_s < self.start_s - 1e-6:
                continue
            if self.end_s is not None and time_s >= self.end_s - 1e-6:
                return
            position = kept
            kept += 1
            if position % self.stride:
                continue
            index = round(time_s * float(self.rate)) if self.rate else position
            yield DecodedFrame(index, time_s, self._upright_bgr(frame))

    def _upright_bgr(self, frame: av.VideoFrame) -> np.ndarray:
        # FFmpeg attaches the stream's display matrix (or an H.264/HEVC orientation SEI) to
        # each decoded frame as side data; PyAV exposes no stream-level reader for it.
        # Not ``frame.side_data``: it caches its container on the frame and the container
        # points back at the frame, a reference cycle that keeps every decoded picture (and
        # its FFmpeg buffers) alive until a full garbage collection, rare with TensorFlow's
        # millions of objects; a long run's memory then grows by tens of MB. A container of
        # our own is freed with the frame.
        data = SideDataContainer(frame).get("DISPLAYMATRIX")
        if data is None:
            self.orientation = UPRIGHT
        else:
            key = bytes(data)
            if key not in self._orientations:
                self._orientations[key] = Orientation.from_side_data(key)
            self.orientation = self._orientations[key]
        return self.orientation.apply(frame.to_ndarray(format="bgr24"))

    def read(self) -> DecodedFrame | None:
        try:
            return next(self._frames)
        except StopIteration:
            return None
        except av.error.FFmpegError as error:
            # A demuxer error (damaged container) ends what can be read.
            self.undecodable += 1
            log.info("%s: stopped reading: %s", self.path, _reason(error))
            return None

    def close(self) -> None:
        self.container.close()


def _reason(error: BaseException) -> str:
    text = getattr(error, "strerror", None) or str(error)
    return text.splitlines()[0] if text else type(error).__name__


def pick_encoder(codec: str) -> str:
    """The FFmpeg encoder for a codec name a user typed.

    Raises:
        UsageError: unknown codec, or none of its encoders is in this FFmpeg build.
    """
    names = CODECS.get(codec.lower(), (codec.lower(),))
    for name in names:
        if name in av.codecs_available:
            try:
                av.codec.Codec(name, "w")
                return name
            except (av.error.FFmpegError, ValueError):
                continue
    known = ", ".join(
        name for name in CODECS if any(n in av.codecs_available for n in CODECS[name])
    )
    raise UsageError(
        f"no encoder for it in this FFmpeg build; available: {known}",
        parameter="codec",
        value=codec,
    )


def even_size(size_wh: tuple[int, int]) -> tuple[int, int]:
    """yuv420p needs even dimensions; odd sizes get one black column/row of padding."""
    width, height = size_wh
    return width + width % 2, height + height % 2


class MediaWriter:
    """Annotated frames into a crash-safe video file, with the source's audio when asked.

    MP4/MOV files get a fragment per keyframe (one a second) and a flush per packet: Ctrl-C,
    SIGTERM and even SIGKILL leave a playable file. Every write is checked; a failure (disk
    full) raises OutputError and what was written before stays playable.

    Frames are written as given (upright) and the video stream carries no display matrix,
    so every player shows them the way they were drawn.

    Args:
        path: output file (.mp4, .m4v, .mov, .mkv or .avi).
        size_wh: source frame size; odd sizes are padded to even.
        rate: frame rate as a fraction (24000/1001 stays so); used as the time base's unit.
        codec: h264 (default), mpeg4, mjpeg, …
        audio_from: a MediaReader-readable file whose audio is copied, or None.
        audio_start_s / audio_end_s: the part of the source's audio to keep.
    """

    def __init__(
        self,
        path: Path,
        size_wh: tuple[int, int],
        rate: Fraction | float,
        codec: str = "h264",
        *,
        audio_from: Path | None = None,
        audio_start_s: float = 0.0,
        audio_end_s: float | None = None,
    ):
        self.path = Path(path)
        self.size_wh = size_wh
        self.rate = (
            Fraction(rate).limit_denominator(1001) if not isinstance(rate, Fraction) else rate
        )
        encoder = pick_encoder(codec)
        options = FRAGMENTED_MP4 if self.path.suffix.lower() in (".mp4", ".m4v", ".mov") else {}
        self._options = dict(options)
        try:
            self.container = av.open(str(self.path), "w", options=dict(options))
        except (av.error.FFmpegError, OSError) as error:
            raise OutputError(
                f"cannot create ({_reason(error)})", parameter="output", value=self.path
            ) from error
        try:
            self.stream = self.container.add_stream(
                encoder, rate=self.rate, options=_encoder_options(encoder)
            )
            self.stream.width, self.stream.height = even_size(size_wh)
            self.stream.pix_fmt = "yuvj420p" if encoder == "mjpeg" else "yuv420p"
            self.stream.codec_context.gop_size = max(
                1, round(float(self.rate) * KEYFRAME_INTERVAL_S)
            )
            self.time_base = (
                Fraction(1, self.rate.numerator)
                if self.rate.numerator <= 1_000_000
                else Fraction(1, 90000)
            )
            self.stream.time_base = self.time_base
            self.stream.codec_context.time_base = self.time_base
        except (av.error.FFmpegError, ValueError) as error:
            self.container.close()
            raise OutputError(
                f"{encoder} cannot be used here ({_reason(error)}); try the mpeg4 codec",
                parameter="output",
                value=self.path,
            ) from error
        self.audio = None
        if audio_from is not None:
            self.audio = self._add_audio(audio_from, audio_start_s, audio_end_s, size_wh)
        else:
            self._start()
        self.frames_written = 0
        self._packets_muxed = 0
        self._frames_durable = 0
        self._last_pts = -1
        self._origin_s: float | None = None
        self._closed = False

    def _start(self) -> None:
        try:
            self.container.start_encoding()
        except (av.error.FFmpegError, OSError, ValueError) as error:
            self.container.close()
            raise OutputError(
                f"cannot write this file ({_reason(error)})", parameter="output", value=self.path
            ) from error

    def _add_audio(
        self, source: Path, start_s: float, end_s: float | None, size_wh: tuple[int, int]
    ) -> _AudioTrack:
        """Copy the source's audio unchanged when the container takes it, else as AAC."""
        track = _AudioTrack(source, self.container, start_s, end_s, transcode=False)
        try:
            self.container.start_encoding()
            return track
        except (av.error.FFmpegError, OSError, ValueError) as error:
            log.info(
                "%s: audio cannot be copied into %s (%s); encoding it as AAC",
                source,
                self.path.suffix,
                _reason(error),
            )
            track.close()
        # A container whose header failed cannot take more streams: start again.
        self.container.close()
        self.container = av.open(str(self.path), "w", options=dict(self._options))
        video = self.container.add_stream(
            self.stream.codec_context.name,
            rate=self.rate,
            options=_encoder_options(self.stream.codec_context.name),
        )
        video.width, video.height = even_size(size_wh)
        video.pix_fmt = self.stream.pix_fmt
        video.codec_context.gop_size = self.stream.codec_context.gop_size
        video.time_base = video.codec_context.time_base = self.time_base
        self.stream = video
        track = _AudioTrack(source, self.container, start_s, end_s, transcode=True)
        self._start()
        return track

    @property
    def frames_durable(self) -> int:
        """Frames certainly in the file now: those before the latest keyframe, whose arrival
        closed and flushed their fragment (all of them once the file is closed)."""
        return self._frames_durable

    def write(self, bgr: np.ndarray, time_s: float | None = None) -> None:
        """Append one (H, W, 3) uint8 BGR frame of ``size_wh``, shown at ``time_s``.

        ``time_s`` None means the next frame at the constant rate.
        """
        if (bgr.shape[1], bgr.shape[0]) != self.size_wh:
            raise OutputError(
                f"frame {bgr.shape[1]}x{bgr.shape[0]} does not match the "
                f"video's {self.size_wh[0]}x{self.size_wh[1]}",
                parameter="output",
                value=self.path,
            )
        padded_w, padded_h = even_size(self.size_wh)
        if (padded_w, padded_h) != self.size_wh:
            canvas = np.zeros((padded_h, padded_w, 3), np.uint8)
            canvas[: bgr.shape[0], : bgr.shape[1]] = bgr
            bgr = canvas
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24")
        if self._origin_s is None:
            # A fragmented MP4 cannot say "starts at 0.04 s" (no edit list): FFmpeg would
            # stretch the first frame. Start the file at its first frame, audio included.
            self._origin_s = time_s or 0.0
            if self.audio is not None:
                self.audio.start_s += self._origin_s
        if time_s is None:
            pts = self._last_pts + round(1 / (self.rate * self.time_base))
        else:
            pts = max(round((time_s - self._origin_s) / self.time_base), self._last_pts + 1)
        frame.pts, frame.time_base = pts, self.time_base
        self._last_pts = pts
        self._mux(self.stream.encode(frame))
        if self.audio is not None:
            self._guard(lambda: self.audio.mux_until(pts * self.time_base))
        self.frames_written += 1

    def _mux(self, packets) -> None:
        for packet in packets:
            if packet.is_keyframe:
                self._frames_durable = self._packets_muxed
            self._guard(lambda packet=packet: self.container.mux(packet))
            self._packets_muxed += 1

    def _guard(self, action) -> None:
        try:
            action()
        except (av.error.FFmpegError, OSError) as error:
            code = getattr(error, "errno", None)
            reason = (
                "no space left on device" if code in (errno.ENOSPC, errno.EFBIG) else _reason(error)
            )
            raise OutputError(
                f"write failed ({reason}); {self.frames_durable} frames before it are kept",
                parameter="output",
                value=self.path,
            ) from error

    def close(self) -> None:
        """Flush the encoder and finish the file; safe to call twice and after errors."""
        if self._closed:
            return
        self._closed = True
        try:
            self._mux(self.stream.encode(None))
            if self.audio is not None:
                self._guard(lambda: self.audio.mux_until(None))
            self._frames_durable = self._packets_muxed
        finally:
            if self.audio is not None:
                self.audio.close()
            try:
                self.container.close()
            except (av.error.FFmpegError, OSError) as error:
                log.warning("%s: closing failed: %s", self.path, _reason(error))


def _encoder_options(encoder: str) -> dict[str, str]:
    if encoder == "libx264":
        # No lookahead or B-frames: each frame leaves the encoder at once, so a killed run loses
        # at most the frame in flight. crf 20 keeps masks and text crisp.
        return {"preset": "veryfast", "tune": "zerolatency", "crf": "20"}
    return {}


class _AudioTrack:
    """The source's audio, interleaved with the video by time: packets copied unchanged, or
    decoded and encoded as AAC when the output container cannot hold the source's codec."""

    def __init__(self, source: Path, output, start_s: float, end_s: float | None, transcode: bool):
        self.input = av.open(str(source))
        self.in_stream = self.input.streams.audio[0]
        self.output = output
        self.transcode = transcode
        if transcode:
            rate = self.in_stream.codec_context.sample_rate or 48000
            self.out_stream = output.add_stream("aac", rate=rate)
            self.out_stream.layout = (
                "stereo" if (self.in_stream.codec_context.channels or 2) > 1 else "mono"
            )
            self._resampler = av.AudioResampler(
                format="fltp", layout=self.out_stream.layout, rate=rate
            )
            # The AAC encoder emits AAC_PRIMING_SAMPLES of priming first; starting our samples
            # after them keeps every timestamp non-negative, so FFmpeg does not shift the whole
            # file (which would stretch the first video frame). Audio lags by 21 ms at 48 kHz.
            self._next_sample = AAC_PRIMING_SAMPLES
        else:
            self.out_stream = output.add_stream_from_template(self.in_stream)
        self.start_s, self.end_s = start_s, end_s
        if start_s > 0:
            self.input.seek(
                int(start_s / self.in_stream.time_base), stream=self.in_stream, backward=True
            )
        self._packets = self.input.demux(self.in_stream)
        self._pending = None
        self.finished = False

    def mux_until(self, until_s: Fraction | float | None) -> None:
        """Mux audio that starts before output time ``until_s`` (None: all the rest)."""
        while not self.finished:
            packet = self._pending or next(self._packets, None)
            self._pending = None
            if packet is None:
                self._finish()
                return
            if packet.pts is None or packet.dts is None:
                continue
            time_s = float(packet.pts * packet.time_base)
            if time_s < self.start_s - 1e-6:
                continue
            if self.end_s is not None and time_s >= self.end_s:
                self._finish()
                return
            if until_s is not None and time_s - self.start_s > float(until_s):
                self._pending = packet
                return
            if self.transcode:
                self._encode(packet)
            else:
                offset = round(self.start_s / packet.time_base)
                packet.pts -= offset
                packet.dts -= offset
                packet.stream = self.out_stream
                self.output.mux(packet)

    def _encode(self, packet) -> None:
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            return  # a damaged audio packet is skipped, like a damaged video one
        for frame in frames:
            for resampled in self._resampler.resample(frame):
                self._mux_frame(resampled)

    def _mux_frame(self, frame) -> None:
        if frame is not None:
            frame.pts = self._next_sample
            frame.time_base = Fraction(1, frame.sample_rate)
            self._next_sample += frame.samples
        for packet in self.out_stream.encode(frame):
            self.output.mux(packet)

    def _finish(self) -> None:
        self.finished = True
        if self.transcode:
            for resampled in self._resampler.resample(None):
                self._mux_frame(resampled)
            self._mux_frame(None)

    def close(self) -> None:
        self.input.close()
