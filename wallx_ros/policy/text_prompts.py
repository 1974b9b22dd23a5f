"""The prompts that make WALL-OSS answer in words: the current subtask, and a free question about the scene.

Both follow what X-Square's own code feeds the model (github.com/X-Square-Robot/wall-x, commit
17335bcc3dd8710b82c7efd806b57a7b38bc682c); the text is written here, not copied:

* subtask: ``wall_x/data/utils.py`` ``get_wallx_normal_text``, the branch taken for a subtask-generation
  sample (``generate_subtask_ratio``): the same system line and "Observation: <view>: <image> ..." user turn
  as an action prompt, then the task instruction followed by "Predict the next action in language." and no
  proprioception; the model was trained to answer "<subtask>\\n<|im_end|>". (LeRobot's port of that function
  builds the same string.)
* question: ``scripts/vqa_inference.py`` ``VQAWrapper.generate``: one user message holding the image(s) and
  then the question, rendered by Qwen2.5-VL's chat template with the generation prompt (its default system
  line included), decoded greedily. X-Square passes one image; here every camera of the checkpoint goes in,
  in the checkpoint's order, as the chat template lays out several images.

Each ``<|image_pad|>`` stands for one image and is expanded to that image's token count when the prompt is
tokenized (as Qwen's processor does). Only the layout lives here; tokenizing and checking the user's text
is ``text_generation``'s job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["IMAGE_PLACEHOLDER", "PROMPT_KINDS", "TextPrompt", "question_prompt", "subtask_prompt"]

IMAGE_PLACEHOLDER = "<|image_pad|>"
PROMPT_KINDS = ("subtask", "question")

_SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
_IMAGE = f"<|vision_start|>{IMAGE_PLACEHOLDER}<|vision_end|>"
_ASSISTANT = "<|im_start|>assistant\n"


@dataclass(frozen=True)
class TextPrompt:
    """What to ask the model: ``kind`` (subtask or question) and the user's text (instruction or question)."""

    kind: str
    text: str

    def __post_init__(self) -> None:
        if self.kind not in PROMPT_KINDS:
            raise ValueError(f"prompt kind must be one of {PROMPT_KINDS}, got {self.kind!r}")

    def render(self, views: Sequence[str]) -> str:
        """The prompt string for images named ``views`` (one ``<|image_pad|>`` per image, in order)."""
        if self.kind == "subtask":
            return subtask_prompt(views, self.text)
        return question_prompt(len(views), self.text)


def subtask_prompt(views: Sequence[str], instruction: str) -> str:
    """X-Square's subtask-generation prompt: each camera by its view name, the task, "in language"."""
    observation = "".join(f" {view}: {_IMAGE}" for view in views)
    return (f"{_SYSTEM}<|im_start|>user\nObservation:{observation}\nInstruction: {instruction}"
            f"\nPredict the next action in language.\n<|im_end|>\n{_ASSISTANT}")


def question_prompt(images: int, question: str) -> str:
    """X-Square's VQA prompt (Qwen2.5-VL chat template, generation prompt added): images, then the question."""
    return f"{_SYSTEM}<|im_start|>user\n{_IMAGE * images}{question}<|im_end|>\n{_ASSISTANT}"
