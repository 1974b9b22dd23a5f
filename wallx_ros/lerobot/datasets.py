"""LeRobot's dataset API (``LeRobotDataset`` v3) as wallx_ros writes and reads it: create / open to append / load,
save an episode, the video encoder settings, and the hooks that let ``wallx_ros.dataset.video_spool`` replace
LeRobot's streaming encoder. No LeRobot import until a function needs it.

====================================  ==========================  =====================================
topic                                 0.4.4                       0.6.x
====================================  ==========================  =====================================
``LeRobotDataset`` codec argument     ``vcodec="..."``            ``rgb_encoder=RGBEncoderConfig(...)``
video decoding backend                torchcodec (+ FFmpeg)       pyav (no system FFmpeg needed)
``save_episode`` video encoding       in process                  ``parallel_encoding=False`` (no fork)
append to a dataset                   ``LeRobotDataset(...)``     ``LeRobotDataset.resume(...)``
image writer, streaming encoder       on the dataset              on ``dataset.writer``
====================================  ==========================  =====================================
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from wallx_ros.lerobot.versions import lerobot_version, prepare_runtime

__all__ = [
    "SVT_AV1_LOG_LEVEL",
    "create_dataset",
    "dataset_cache_files",
    "default_video_backend",
    "load_dataset",
    "open_dataset",
    "preload_dataset_api",
    "quiet_video_encoder",
    "save_episode",
    "spool_video_encoding",
    "stop_image_writer",
    "use_spool_encoder",
]


def _dataset_class() -> Any:
    prepare_runtime()
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    return LeRobotDataset


def preload_dataset_api() -> None:
    """Import LeRobot's dataset stack now (seconds) rather than at the first episode."""
    _dataset_class()


# SVT-AV1 (libsvtav1, LeRobot's default codec) logs a ~25-line banner at every encoder it opens (per camera and
# episode: ~2 lines a second while recording) plus warnings about settings it adjusts itself. Its own variable
# SVT_LOG sets the level it prints (0 fatal, 1 error, 2 warn, 3 info); a value the user set is kept.
SVT_AV1_LOG_LEVEL = "1"


def quiet_video_encoder() -> None:
    """Keep SVT-AV1's errors only (unless SVT_LOG is set): called before LeRobot opens any encoder."""
    os.environ.setdefault("SVT_LOG", SVT_AV1_LOG_LEVEL)


def _encoder_kwargs(method: Any, vcodec: str | None, streaming_encoding: bool) -> dict[str, Any]:
    """Video-encoder keyword arguments as this LeRobot's ``create``/``__init__`` spells them."""
    import inspect

    quiet_video_encoder()

    params = inspect.signature(method).parameters
    kwargs: dict[str, Any] = {}
    if vcodec:
        if "vcodec" in params:  # 0.4.x
            kwargs["vcodec"] = vcodec
        elif "rgb_encoder" in params:  # 0.6.x
            from lerobot.configs import RGBEncoderConfig

            kwargs["rgb_encoder"] = RGBEncoderConfig(vcodec=vcodec)
        else:
            raise TypeError(f"this LeRobot ({lerobot_version()}) takes no video codec setting")
    if streaming_encoding:
        if "streaming_encoding" not in params:
            raise TypeError(f"this LeRobot ({lerobot_version()}) has no streaming video encoding")
        kwargs["streaming_encoding"] = True
    return kwargs


def create_dataset(*, repo_id: str, root: Path, fps: int, features: dict[str, Any], robot_type: str,
                   use_videos: bool, vcodec: str | None = None, image_writer_threads: int = 0,
                   streaming_encoding: bool = False) -> Any:
    """``LeRobotDataset.create`` (``root`` must not exist yet). ``streaming_encoding``: LeRobot's streaming
    encoder is created, to be replaced by the spool encoder (``use_spool_encoder``)."""
    cls = _dataset_class()
    return cls.create(repo_id=repo_id, fps=fps, features=features, root=root, robot_type=robot_type,
                      use_videos=use_videos, image_writer_threads=image_writer_threads,
                      **_encoder_kwargs(cls.create, vcodec, streaming_encoding))


@contextlib.contextmanager
def _datasets_cache(cache_dir: Path | None) -> Any:
    """Point Hugging Face ``datasets``' parquet->arrow cache at ``cache_dir`` for the block (None: unchanged)."""
    if cache_dir is None:
        yield
        return
    import datasets

    previous = datasets.config.HF_DATASETS_CACHE
    datasets.config.HF_DATASETS_CACHE = Path(cache_dir)
    try:
        yield
    finally:
        datasets.config.HF_DATASETS_CACHE = previous


def open_dataset(*, repo_id: str, root: Path, vcodec: str | None = None, image_writer_threads: int = 0,
                 streaming_encoding: bool = False, cache_dir: Path | None = None) -> Any:
    """An existing local dataset opened to append episodes (LeRobot's resume path: new episodes go to new
    data, meta and video files). ``cache_dir`` receives the arrow cache ``datasets`` builds on load.

    0.4.4 appends through ``LeRobotDataset(repo_id, root)`` + ``start_image_writer``; 0.6 opens that read-only
    and appends through ``LeRobotDataset.resume(...)`` (which loads no frames until they are read).
    """
    cls = _dataset_class()
    if lerobot_version() >= (0, 5, 0):
        with _datasets_cache(cache_dir):
            return cls.resume(repo_id, root=root, image_writer_threads=image_writer_threads,
                              **_encoder_kwargs(cls.resume, vcodec, streaming_encoding))
    with _datasets_cache(cache_dir):
        ds = cls(repo_id, root=root,
                 **_encoder_kwargs(cls.__init__, vcodec, streaming_encoding))
    if image_writer_threads:
        ds.start_image_writer(num_processes=0, num_threads=image_writer_threads)
    return ds


def stop_image_writer(dataset: Any) -> None:
    """Stop a dataset's background image writer (0.6 keeps it on ``dataset.writer``). No-op without one."""
    owner = dataset.writer if lerobot_version() >= (0, 5, 0) else dataset
    if owner is not None:
        owner.stop_image_writer()


def dataset_cache_files(dataset: Any) -> list[Path]:
    """Arrow cache files the loaded dataset memory-maps (to prune stale caches next to them). A 0.6 dataset
    opened to append has loaded nothing (its reader is created on first read): none."""
    if lerobot_version() >= (0, 5, 0):
        reader = getattr(dataset, "reader", None)
        hf = getattr(reader, "hf_dataset", None) if reader is not None else None
    else:
        hf = getattr(dataset, "hf_dataset", None)
    return [Path(f["filename"]) for f in getattr(hf, "cache_files", [])]


def load_dataset(repo_id: str, root: Path, *, episodes: list[int] | None = None,
                 delta_timestamps: dict[str, list[float]] | None = None, video_backend: str | None = None) -> Any:
    """A local dataset opened for reading (frames, decoded video, ``meta``); ``video_backend`` None = the
    backend that decodes on CPU with this line (``default_video_backend()``)."""
    cls = _dataset_class()
    return cls(repo_id, root=root, episodes=episodes, delta_timestamps=delta_timestamps,
               video_backend=video_backend or default_video_backend())


def save_episode(dataset: Any) -> None:
    """``dataset.save_episode()``, encoding videos in this process: LeRobot's parallel encoding forks a
    process pool, which is unsafe in a process that runs DDS threads (a node)."""
    import inspect

    if "parallel_encoding" in inspect.signature(dataset.save_episode).parameters:
        dataset.save_episode(parallel_encoding=False)
    else:
        dataset.save_episode()


def default_video_backend() -> str:
    """The video decoding backend that works on CPU with this line.

    0.4.4: ``torchcodec`` (0.13, needs the system FFmpeg libraries; its ``pyav`` path is broken with
    torchvision >= 0.26). 0.6: ``pyav`` (PyAV's own bundled FFmpeg, no system libraries needed).
    """
    return "torchcodec" if lerobot_version() < (0, 5, 0) else "pyav"


def _streaming_owner(dataset: Any) -> Any:
    """The object holding the streaming video encoder (0.6 keeps it on ``dataset.writer``)."""
    return getattr(dataset, "writer", None) if lerobot_version() >= (0, 5, 0) else dataset


def spool_video_encoding(dataset: Any) -> dict[str, Any]:
    """How LeRobot would encode this dataset's cameras, for the spool encoder's worker processes
    (``dataset.video_spool.VideoEncoding`` fields): the codec, pixel format and codec options of the streaming
    encoder LeRobot created for it (open the dataset with ``streaming_encoding=True``), and the image-stats
    quantiles LeRobot computes (``(key, quantile)`` pairs)."""
    from lerobot.datasets.compute_stats import DEFAULT_QUANTILES

    encoder = getattr(_streaming_owner(dataset), "_streaming_encoder", None)
    if encoder is None:
        raise TypeError("the dataset has no streaming video encoder (open it with streaming_encoding=True)")
    if lerobot_version() >= (0, 5, 0):
        config = encoder._rgb_encoder
        vcodec, pix_fmt = str(config.vcodec), str(config.pix_fmt)
        options = config.get_codec_options(encoder._encoder_threads, as_strings=True)
    else:
        from lerobot.datasets.video_utils import _get_codec_options

        vcodec, pix_fmt = str(encoder.vcodec), str(encoder.pix_fmt)
        options = _get_codec_options(vcodec, encoder.g, encoder.crf, encoder.preset)
        if encoder.encoder_threads is not None:
            options["threads"] = str(encoder.encoder_threads)
    quantiles = tuple((f"q{int(q * 100):02d}", float(q)) for q in DEFAULT_QUANTILES)  # RunningQuantileStats' keys
    return {"vcodec": vcodec, "pix_fmt": pix_fmt, "options": {str(k): str(v) for k, v in options.items()},
            "quantiles": quantiles}


def use_spool_encoder(dataset: Any, encoder: Any) -> None:
    """Replace the dataset's streaming video encoder by ``encoder`` (same interface: ``start_episode``,
    ``feed_frame``, ``finish_episode``, ``cancel_episode``, ``close``); LeRobot's own is closed first."""
    owner = _streaming_owner(dataset)
    old = getattr(owner, "_streaming_encoder", None)
    if old is None:
        raise TypeError("the dataset has no streaming video encoder (open it with streaming_encoding=True)")
    old.close()
    owner._streaming_encoder = encoder
