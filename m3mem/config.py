"""Settings: defaults < ``--config`` TOML file < ``M3MEM_*`` environment variables < flags."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from m3mem.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    # retrieval
    top_k: int = 5  # clips (or memories) returned per search
    mode: str = "max"  # clip scoring: max, mean or sum
    threshold: float = 0.0  # results scoring below this are dropped
    ranker: str = "dense"  # dense, lexical (BM25) or hybrid (both, reciprocal rank fusion)
    # models
    text_embedder: str = "minilm"  # "minilm" (packaged, offline) or a sentence-transformers folder
    device: str | None = None  # "cpu", "cuda", ...; None picks CUDA when present
    faces: str = "dlib"  # "dlib" (packaged CenterFace + dlib, mirror-averaged), "dlib-single" (no mirror:
    #   faster, weaker), or an insightface model folder (buffalo_l)
    asr: str = "tiny.en"  # "tiny.en" / "base" (packaged), a CTranslate2 folder, or an openai-whisper .pt
    asr_language: str = "en"  # spoken language for a multilingual ASR model ("auto": detected per clip)
    asr_beam: int | None = None  # ASR beam width; None: 5 on CUDA, 1 (greedy) on the CPU (README "Perception")
    # ingest
    fps: float = 1.0  # frames sampled per second for faces
    clip_seconds: float = 30.0
    scene_text: bool = False  # read on-screen text (rapidocr) on a few frames per clip
    cache_dir: str | None = None  # perception cache; default $M3MEM_CACHE or ~/.cache/m3mem
    # batch ingest of archives
    workers: int = 1  # worker processes (or Ray actors), each loading the models once
    ray: str | None = None  # run on Ray: "local" (ray.init() here) or a cluster address ("auto", "ray://head:10001")
    worker_cpus: float = 1.0  # CPUs each Ray actor reserves
    worker_gpus: float = 0.0  # GPUs each Ray actor reserves (e.g. 1, or 0.5 to share one)
    worker_retries: int = 2  # times a video is retried after its worker died
    memorizer: str = "perception"  # "perception" (offline), "openai" (a served VLM), or a local Qwen2.5-VL folder
    memorizer_model: str | None = None  # model name on the server (memorizer = "openai")
    memorizer_base_url: str | None = None  # e.g. http://localhost:8000/v1 (vLLM, SGLang, Ollama)
    memorizer_api_key: str | None = None  # default: $OPENAI_API_KEY
    # chat model (control agent, judge)
    llm: str = "qwen2.5-coder-0.5b"  # offline GGUF (Qwen2.5-Coder-0.5B-Instruct), "openai", or a local folder
    llm_model: str | None = None  # model name on the server (llm = "openai")
    llm_base_url: str | None = None
    llm_api_key: str | None = None  # default: $OPENAI_API_KEY
    rounds: int = 5  # control rounds per question; the last one must answer
    ask_top_k: int = 2  # clips shown to the chat model per search (small models read few clips best)
    timeout: float = 120.0  # seconds per model-server request
    retries: int = 3  # retries of a model-server request on timeouts, 429 and 5xx


def cache_root(settings: "Settings | None" = None) -> Path:
    """Where models are assembled and perception is cached."""
    if settings is not None and settings.cache_dir:
        return Path(settings.cache_dir)
    if os.environ.get("M3MEM_CACHE"):
        return Path(os.environ["M3MEM_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "m3mem"


def _coerce(field: dataclasses.Field, value: Any, source: str) -> Any:
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    if value is None or not isinstance(value, str):
        return value
    try:
        if kind.startswith("int"):
            return int(value)
        if kind.startswith("float"):
            return float(value)
        if kind.startswith("bool"):
            return value.lower() in ("1", "true", "yes", "on")
    except ValueError:
        raise ConfigError(f"{source}: {field.name} must be {kind}, got {value!r}") from None
    return value


def load_settings(config: str | Path | None = None, flags: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Merge the sources; unknown keys in the file are an error (typos should not pass silently)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    byname = {f.name: f for f in fields(Settings)}
    path = config or environ.get("M3MEM_CONFIG")
    if path:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML ({e})") from e
        unknown = sorted(set(data) - set(byname))
        if unknown:
            raise ConfigError(f"{path}: unknown settings {unknown}; known: {sorted(byname)}")
        values.update({k: _coerce(byname[k], v, str(path)) for k, v in data.items()})
    for name, f in byname.items():
        env = environ.get(f"M3MEM_{name.upper()}")
        if env is not None:
            values[name] = _coerce(f, env, f"M3MEM_{name.upper()}")
    for name, value in (flags or {}).items():
        if name in byname and value is not None:
            values[name] = _coerce(byname[name], value, f"--{name.replace('_', '-')}")
    return Settings(**values)
