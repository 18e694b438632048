"""Calibrate cross-clip voice matching on labelled real clips, with a tuning and a test part.

    python scripts/calibrate_voices.py [--json PATH]

Clips with one known speaker each: vasp_ids (10 people x 6 clips), LRS2 (10 men), the talking
heads (the same woman twice), speechbrain's two speakers (6 sentences each). Each clip is
perceived with the offline VAD and speaker encoder; its largest voice cluster is matched, clip by
clip in interleaved order, into one growing memory. Reported per scoring method and threshold:
pairwise precision / recall of "same node" against "same speaker", and nodes per speaker. The
tuning part picks the setting (best recall with precision >= 0.95); the test part reports it.

Methods: ``mean`` scores a node by the mean cosine of its stored embeddings with the cluster's
centroid; ``centroid`` by the cosine of the node's centroid with the cluster's centroid.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from bench.media import MEDIA
from m3mem import build
from m3mem.config import Settings
from preprocessing import voices as voice_ops
from preprocessing.video import DecodeOptions, iter_clips
from preprocessing.voices import VoiceOptions

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibrate_identity import evaluate, interleave  # noqa: E402

TUNE_VASP = {"ID1", "ID2", "ID4", "ID5", "ID6"}


def labelled_clips(media: Path) -> list[tuple[str, str, Path]]:
    """(split, speaker, file) for every single-speaker clip."""
    out = []
    for d in sorted((media / "video/vasp_ids").iterdir()):
        for f in sorted(d.glob("*.mp4")):
            out.append(("tune" if d.name in TUNE_VASP else "test", f"vasp_{d.name}", f))
    for k, f in enumerate(sorted((media / "video/lrs2_deep_avsr").glob("*.mp4"))):
        out.append(("tune" if k < 5 else "test", f"lrs2_{f.stem}", f))
    heads = {"WDA_AlexandriaOcasioCortez_000": "aoc", "retalking_face_3": "aoc"}
    for f in sorted((media / "video/talking_heads").glob("*.mp4")):
        out.append(("test", heads.get(f.stem, f.stem), f))
    sb = media / "audio/speechbrain_asr"
    for row in csv.DictReader(open(sb / "ASR_train.csv")):
        out.append(("tune" if row["spk_id"] == "spk1" else "test", f"sb_{row['spk_id']}", sb / f"{row['ID']}.wav"))
    return out


def voice_clusters(clips, models, options: VoiceOptions) -> list[tuple[str, str, np.ndarray]]:
    out = []
    for split, speaker, path in clips:
        audio = np.concatenate([c.audio for c in iter_clips(path, DecodeOptions(clip_seconds=3600))])
        segments = models.vad.speech(audio)
        clusters, _ = voice_ops.diarize(audio, segments, models.speakers, options)
        if clusters:
            out.append((split, speaker, clusters[0].embeddings))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    models = build.perception_models(Settings())
    clusters = voice_clusters(labelled_clips(MEDIA), models, VoiceOptions())
    parts = {s: interleave([(lab, e) for split, lab, e in clusters if split == s]) for s in ("tune", "test")}
    rows = []
    for method in ("mean", "centroid"):
        for t in np.arange(0.55, 0.92, 0.025).round(3):
            rows.append({"part": "tune", **evaluate(parts["tune"], t, "voice", method)})
    ok = [r for r in rows if r["precision"] >= 0.95] or rows
    best = max(ok, key=lambda r: (r["recall"], r["precision"]))
    test = {"part": "test", **evaluate(parts["test"], best["threshold"], "voice", best["method"])}
    print(f"{len(parts['tune'])} tuning clips, {len(parts['test'])} test clips")
    print(f"{'method':>8} {'threshold':>9} {'precision':>9} {'recall':>7} {'nodes/speaker':>13}")
    for r in rows:
        mark = "  <- chosen" if r is best else ""
        print(f"{r['method']:>8} {r['threshold']:9.3f} {r['precision']:9.3f} {r['recall']:7.3f} "
              f"{r['nodes_per_person']:13.2f}{mark}")
    print(f"test part at the chosen setting: precision {test['precision']:.3f}, recall {test['recall']:.3f}, "
          f"{test['nodes_per_person']:.2f} nodes per speaker")
    if args.json:
        Path(args.json).write_text(json.dumps({"tune": rows, "chosen": best, "test": test}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
