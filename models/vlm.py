"""Vision-language memorizers: frames, labelled face crops and a labelled transcript in,
episodic and semantic memories out (M3-Agent's memorization task, in our own words).
"""

from __future__ import annotations

import base64
import logging

from models.chat import ChatError, ChatModel
from models.memorizer import ClipContext, Memories, MemorizerError, drop_unknown, parse_reply
from preprocessing.types import timecode

log = logging.getLogger(__name__)

SYSTEM = """You are the memory of an assistant that watches a long video one 30-second clip at a time.
For the clip you are shown, write two lists of short, self-contained sentences.
- "episodic": what happens in this clip: who is present, what they do and say (quote or closely
  paraphrase speech), how they look, objects, places, on-screen text, with times where useful.
- "semantic": lasting knowledge the clip supports: a person's name, role, relationships,
  preferences, habits; general facts about the setting. When a face and a voice belong to the
  same person, add exactly the line "Equivalence: <face_N>, <voice_M>".
Refer to people ONLY with the tags given to you (<face_N> for faces, <voice_M> for voices) and
never invent new tags. Write nothing you cannot see or hear in the clip.
When the clip tells a person's name (an introduction, a caption, being addressed and answering),
also give it in "names", keyed by the tag: {"<voice_M>": "Lily"}.
Reply with one JSON object and nothing else: {"episodic": [...], "semantic": [...], "names": {...}}"""


def _image(jpeg: bytes) -> dict:
    return {"type": "image_url",
            "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()}}


def clip_messages(ctx: ClipContext) -> list[dict]:
    """The OpenAI-style chat messages that describe one clip to a VLM."""
    p = ctx.perception
    parts: list[dict] = [{"type": "text", "text": f"Clip from {timecode(p.start)} to {timecode(p.end)}. Frames:"}]
    parts += [_image(k) for k in p.keyframes]
    if p.faces:
        parts.append({"type": "text", "text": "Faces in this clip:"})
        for fid, f in zip(ctx.face_ids, p.faces):
            spans = ", ".join(f"{timecode(a)}-{timecode(b)}" for a, b in f.spans)
            parts.append({"type": "text", "text": f"<face_{fid}> (on screen {spans}):"})
            parts += [_image(c) for c in f.crops[:1]]
    else:
        parts.append({"type": "text", "text": "No face was detected in this clip."})
    lines = [f"[{timecode(u.start)}-{timecode(u.end)}] "
             f"{f'<voice_{ctx.voice_ids[u.speaker]}>' if u.speaker >= 0 else 'unknown voice'}: {u.text.strip()}"
             for u in p.utterances if u.text.strip()]
    transcript = "\n".join(lines) if lines else ("(no speech)" if p.has_audio else "(the video has no audio)")
    parts.append({"type": "text", "text": "Transcript:\n" + transcript})
    if p.scene_text:
        parts.append({"type": "text", "text": "On-screen text: " + " | ".join(p.scene_text)})
    parts.append({"type": "text", "text": 'Now reply with the JSON object '
                                          '{"episodic": [...], "semantic": [...], "names": {...}}.'})
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": parts}]


class OpenAIMemorizer:
    """A VLM behind an OpenAI-compatible API. Transient server errors are retried by the chat
    client; an unparseable reply is asked again ``reask`` times, then fails naming the clip."""

    def __init__(self, chat: ChatModel, max_tokens: int = 1024, reask: int = 1):
        self.chat, self.max_tokens, self.reask = chat, max_tokens, reask
        self.name = f"openai:{chat.name}"

    def memorize(self, ctx: ClipContext) -> Memories:
        messages = clip_messages(ctx)
        where = f"{ctx.perception.video} clip {ctx.perception.clip}"
        for attempt in range(self.reask + 1):
            try:
                reply = self.chat.complete(messages, max_tokens=self.max_tokens)
            except ChatError as e:
                raise MemorizerError(f"{where}: memorizer model failed: {e}") from e
            try:
                return drop_unknown(parse_reply(reply), ctx.known)
            except ValueError as e:
                log.warning("%s: unusable memorizer reply (attempt %d): %s", where, attempt + 1, e)
        raise MemorizerError(f"{where}: the memorizer model gave no usable JSON after {self.reask + 1} tries")


class TransformersMemorizer:
    """A local Qwen2.5-VL or Qwen2.5-Omni-thinker style checkpoint (e.g. M3-Agent-Memorization's
    thinker) through
    transformers, CUDA when present. The chat prompt is written in Qwen's ChatML with one
    vision placeholder per image, expanded to the image's patch count, as Qwen's processor does
    (built from parts so that torchvision is not needed)."""

    def __init__(self, path: str, device: str | None = None, max_tokens: int = 1024, max_pixels: int = 448 * 448,
                 reask: int = 1):
        try:
            import torch
            import transformers
            from transformers import AutoConfig, AutoTokenizer
            from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
        except ImportError as e:
            raise ImportError("local VLM memorizers need torch, transformers and Pillow") from e
        from pathlib import Path

        from models.device import pick_device

        if not Path(path).is_dir():
            raise FileNotFoundError(f"{path}: no such model folder")
        self.torch = torch
        self.device = pick_device(device)
        from models.weights import quiet_loading

        quiet_loading()
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        arch = (config.architectures or ["Qwen2_5_VLForConditionalGeneration"])[0]
        self.model = getattr(transformers, arch).from_pretrained(
            path, local_files_only=True, dtype=self.dtype(torch))
        self.model.to(self.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.images = Qwen2VLImageProcessorPil(max_pixels=max_pixels)
        self.merge = config.vision_config.spatial_merge_size
        tok = self.tokenizer.convert_ids_to_tokens
        # Qwen2.5-VL: image_token_id + vision_start/end ids; Qwen2.5-Omni thinker: image_token_index
        # with <|vision_bos|> / <|vision_eos|> around it
        self.image_pad = tok(getattr(config, "image_token_id", None) or config.image_token_index)
        start, end = (getattr(config, f"vision_{k}_token_id", None) for k in ("start", "end"))
        if start is not None and end is not None:
            self.vision = (tok(start), tok(end))
        else:
            vocab = self.tokenizer.get_vocab()
            self.vision = next(((a, b) for a, b in (("<|vision_bos|>", "<|vision_eos|>"),
                                                   ("<|vision_start|>", "<|vision_end|>"))
                                if a in vocab and b in vocab), ("", ""))
        self.max_tokens, self.reask = max_tokens, reask
        self.name = f"transformers:{Path(path).name}"


    def dtype(self, torch):
        """bfloat16 on a CUDA device that has it (Ampere and later), float16 on older ones, float32 on CPU."""
        if not self.device.startswith("cuda"):
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    def _inputs(self, messages: list[dict]):
        import io

        from PIL import Image

        text, images = "", []
        for m in messages:
            text += f"<|im_start|>{m['role']}\n"
            parts = m["content"] if isinstance(m["content"], list) else [{"type": "text", "text": m["content"]}]
            for p in parts:
                if p["type"] == "image_url":
                    jpeg = base64.b64decode(p["image_url"]["url"].split(",", 1)[1])
                    images.append(Image.open(io.BytesIO(jpeg)).convert("RGB"))
                    text += f"{self.vision[0]}\0{self.vision[1]}"
                else:
                    text += p["text"] + "\n"
            text += "<|im_end|>\n"
        text += "<|im_start|>assistant\n"
        extra = {}
        if images:
            px = self.images(images=images, return_tensors="pt")
            counts = (px["image_grid_thw"].prod(-1) // self.merge ** 2).tolist()
            chunks = text.split("\0")
            text = chunks[0] + "".join(self.image_pad * n + c for n, c in zip(counts, chunks[1:]))
            extra = {"pixel_values": px["pixel_values"], "image_grid_thw": px["image_grid_thw"]}
        ids = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        return {**ids, **extra}

    def memorize(self, ctx: ClipContext) -> Memories:
        dtype = self.model.dtype  # images in the model's precision (bfloat16 / float16 on CUDA)
        where = f"{ctx.perception.video} clip {ctx.perception.clip}"
        try:
            raw = self._inputs(clip_messages(ctx))
        except OSError as e:  # PIL's UnidentifiedImageError: a keyframe or face crop that is no image
            raise MemorizerError(f"{where}: an image of the clip cannot be read: {e}") from e
        inputs = {k: v.to(self.device, dtype=dtype) if v.is_floating_point() else v.to(self.device)
                  for k, v in raw.items()}
        for attempt in range(self.reask + 1):
            with self.torch.inference_mode():
                out = self.model.generate(**inputs, max_new_tokens=self.max_tokens, do_sample=attempt > 0,
                                          pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
            reply = self.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
            try:
                return drop_unknown(parse_reply(reply), ctx.known)
            except ValueError as e:
                log.warning("%s: unusable memorizer reply (attempt %d): %s", where, attempt + 1, e)
        raise MemorizerError(f"{where}: the local memorizer gave no usable JSON after {self.reask + 1} tries")
