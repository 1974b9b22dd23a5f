"""Off-screen rendering of the scene's cameras (headless: MUJOCO_GL=osmesa on CPU, egl on a GPU).

One ``mujoco.Renderer`` serves every camera of one resolution. Shadows and multisampling are off by
default: with OSMesa (software OpenGL) the gym-aloha scene's 4096 px shadow maps cost ~10x the frame.
"""

from __future__ import annotations

import math
from types import TracebackType
from typing import Any

import mujoco
import numpy as np
import numpy.typing as npt

from wallx_ros.sim.errors import RenderError, SceneError

__all__ = ["CameraIntrinsics", "CameraRenderer"]


class CameraIntrinsics:
    """Pinhole model of a MuJoCo camera at a resolution (what sensor_msgs/CameraInfo carries)."""

    def __init__(self, width: int, height: int, fovy_deg: float) -> None:
        self.width = width
        self.height = height
        self.fy = height / (2.0 * math.tan(math.radians(fovy_deg) / 2.0))
        self.fx = self.fy  # MuJoCo cameras have square pixels
        self.cx = (width - 1) / 2.0
        self.cy = (height - 1) / 2.0

    @property
    def k(self) -> list[float]:
        return [self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0]


class CameraRenderer:
    """Render named cameras of ``model`` at ``width`` x ``height``; call ``close()`` (or use ``with``)."""

    def __init__(self, model: Any, width: int, height: int, shadows: bool = False) -> None:
        if not shadows:
            model.vis.quality.offsamples = 0
        # the off-screen buffer must hold the frame
        model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), width)
        model.vis.global_.offheight = max(int(model.vis.global_.offheight), height)
        try:
            self._renderer: Any = mujoco.Renderer(model, height=height, width=width)
        except Exception as err:  # mujoco raises plain Exceptions from its GL context code
            raise RenderError(
                f"cannot create a {width}x{height} MuJoCo renderer ({err}); headless machines need "
                "MUJOCO_GL=osmesa (source scripts/env.sh) and the libosmesa6 package (scripts/setup.sh installs it)"
            ) from err
        self._model = model
        self._shadows = shadows
        self.width = width
        self.height = height
        self._closed = False

    def camera_id(self, name: str) -> int:
        cid = int(mujoco.mj_name2id(self._model, mujoco.mjtObj.mjOBJ_CAMERA, name))
        if cid < 0:
            cams = [self._model.camera(i).name for i in range(self._model.ncam)]
            raise SceneError(f"the scene has no camera {name!r}; its cameras are {cams}")
        return cid

    def intrinsics(self, name: str) -> CameraIntrinsics:
        return CameraIntrinsics(self.width, self.height, float(self._model.cam_fovy[self.camera_id(name)]))

    def render(self, data: Any, camera: str | int) -> npt.NDArray[np.uint8]:
        """RGB uint8 (height, width, 3) of one camera for the current state in ``data``."""
        if self._closed:
            raise RenderError("renderer is closed")
        self._renderer.update_scene(data, camera=camera)
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = self._shadows
        return np.asarray(self._renderer.render(), dtype=np.uint8)

    def close(self) -> None:
        if not self._closed:
            self._renderer.close()
            self._closed = True

    def __enter__(self) -> CameraRenderer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
