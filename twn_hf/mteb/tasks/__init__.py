"""The 78 MMEB-V2 tasks as mteb tasks (see `base` for the protocol mapping, `specs` for the task table)."""

from .base import TASK_CLASSES, TASK_PREFIX, MMEBV2Task, get_task, get_tasks, mmeb_name, task_name
from .data import HUB_REVISIONS, ROOT_ENV, fetch_mmeb_v2_media
from .specs import CATEGORIES, MMEB_TRAIN_IN_DISTRIBUTION, SPECS_BY_NAME, TASK_SPECS, MMEBTaskSpec

__all__ = [
    "CATEGORIES", "HUB_REVISIONS", "MMEB_TRAIN_IN_DISTRIBUTION", "ROOT_ENV", "SPECS_BY_NAME", "TASK_CLASSES",
    "TASK_PREFIX", "TASK_SPECS", "MMEBTaskSpec", "MMEBV2Task", "fetch_mmeb_v2_media", "get_task", "get_tasks",
    "mmeb_name", "task_name",
]
