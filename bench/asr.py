"""Word error rate and speed of the ASR settings, side by side, on real speech with human transcripts.

    python -m bench.asr [--asr tiny.en,base] [--beams 1,5] [--device cpu] [--json PATH]

Parts (../shared/media): ``film`` is the 20 Night of the Living Dead recordings (old film dialogue
and broadcasts, 560 s; the long benchmark video's off-screen voices), the tuning part; ``test`` is
everything else with a transcript: the LRS2 BBC clips, the GRID sentences, the SpeechBrain and
LibriVox utterances and JFK's speech. Words are compared lower-cased, without punctuation, with
digits spelled out ("f2" = "f two"), by edit distance; the real-time factor is transcription
seconds per audio second (audio decoded before timing; the model warmed up first).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from bench.media import MEDIA
from m3mem.quoting import NUMBER_WORDS

def words(text: str) -> list[str]:
    text = re.sub(r"(\d)", r" \1 ", text.lower().replace("’", "'"))
    return [NUMBER_WORDS[int(w)] if w.isdigit() else w for w in re.findall(r"[a-z0-9']+", text)]


def errors(truth: list[str], said: list[str]) -> int:
    """Word-level edit distance."""
    row = list(range(len(said) + 1))
    for i, t in enumerate(truth, 1):
        diag, row[0] = row[0], i
        for j, s in enumerate(said, 1):
            diag, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diag + (t != s))
    return row[-1]


def items(media: Path) -> list[tuple[str, Path, str]]:
    """(part, audio or video file, transcript) for every recording with a human transcript."""
    out = [("film", t.with_suffix(".wav"), t.read_text()) for t in sorted((media / "audio/notld_1968").glob("*.txt"))]
    lrs2 = media / "video/lrs2_deep_avsr"
    out += [("test", t.with_suffix(".mp4"), t.read_text().split("\n")[0].replace("Text:", ""))
            for t in sorted(lrs2.glob("*.txt"))]
    grid = media / "video/grid_lipnet/transcripts_from_filenames.tsv"
    if grid.exists():
        out += [("test", grid.parent / r["file"], r["transcript"])
                for r in csv.DictReader(grid.open(), delimiter="\t")]
    sb = media / "audio/speechbrain_asr/ASR_train.csv"
    if sb.exists():
        out += [("test", sb.parent / f"{r['ID']}.wav", r["wrd"]) for r in csv.DictReader(sb.open())]
    lv = media / "audio/pocketsphinx_librivox/transcription"
    if lv.exists():
        for line in lv.read_text().splitlines():
            m = re.match(r"<s>(.*)</s>\s*\((\S+)\)", line.strip())
            if m:
                out.append(("test", lv.parent / f"{m.group(2)}.wav", m.group(1)))
    jfk = media / "audio/whisper_jfk/jfk.flac"
    if jfk.exists():
        out.append(("test", jfk, "And so my fellow Americans, ask not what your country can do for you, "
                                 "ask what you can do for your country."))
    return [(part, path, text) for part, path, text in out if path.exists()]


def load(path: Path) -> np.ndarray:
    """16 kHz mono float32 audio of a file (PyAV)."""
    import av

    with av.open(str(path)) as c:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
        chunks = [g.to_ndarray().reshape(-1) for f in c.decode(audio=0) for g in resampler.resample(f)]
        chunks += [g.to_ndarray().reshape(-1) for g in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.float32)


def run(asr, audio: list[tuple[str, np.ndarray, str]]) -> dict:
    asr.transcribe(audio[0][1][:16000])
    errs: dict[str, int] = {}
    total: dict[str, int] = {}
    seconds: dict[str, float] = {}
    spent: dict[str, float] = {}
    for part, pcm, text in audio:
        t = time.perf_counter()
        said = " ".join(s.text for s in asr.transcribe(pcm))
        spent[part] = spent.get(part, 0.0) + time.perf_counter() - t
        truth = words(text)
        errs[part] = errs.get(part, 0) + errors(truth, words(said))
        total[part] = total.get(part, 0) + len(truth)
        seconds[part] = seconds.get(part, 0.0) + len(pcm) / 16000
    return {part: {"wer": errs[part] / total[part], "errors": errs[part], "words": total[part],
                   "audio_seconds": seconds[part], "rtf": spent[part] / seconds[part]} for part in errs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.asr", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--asr", default="tiny.en", help="models to compare, comma-separated (tiny.en, base, a folder)")
    ap.add_argument("--beams", default="1,5", help="beam widths to compare, comma-separated (default 1,5)")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    ap.add_argument("--json", metavar="PATH", help="write the rows as JSON")
    args = ap.parse_args(argv)
    found = items(MEDIA)
    if not found:
        print(f"shared media not found at {MEDIA} (set M3MEM_MEDIA)", file=sys.stderr)
        return 3
    from m3mem.config import Settings, cache_root
    from models.audio import FasterWhisperASR

    audio = [(part, load(path), text) for part, path, text in found]
    rows = []
    for model in args.asr.split(","):
        for beam in (int(b) for b in args.beams.split(",")):
            asr = FasterWhisperASR(model, device=args.device, beam_size=beam, cache=cache_root(Settings()))
            rows.append({"asr": model, "beam": beam, "device": asr.device, "parts": run(asr, audio)})
    print(f"{'asr':>10} {'beam':>4} {'device':>6} {'part':>5} {'words':>6} {'WER':>6} {'rtf':>6}")
    for r in rows:
        for part, p in r["parts"].items():
            print(f"{r['asr']:>10} {r['beam']:>4} {r['device']:>6} {part:>5} {p['words']:>6} {p['wer']:6.3f} {p['rtf']:6.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
