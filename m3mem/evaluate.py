"""M3-Bench-style evaluation: annotation files in, judged answers (JSONL) and a report out.

Annotation format (M3-Bench): {video_id: {"video_path", "mem_path", "qa_list": [{"question",
"answer", "question_id", "type": [...], "before_clip"?, "timestamp"?}]}}. M3-Bench's
``before_clip`` is the last clip the question may see (inclusive); our retriever's is exclusive,
so it is passed on plus one.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from m3mem.errors import AnnotationError, InputError
from m3mem.quoting import NUMBER_WORDS, SAYS_UNKNOWN

log = logging.getLogger(__name__)

TYPES = ["Multi-Detail Reasoning", "Multi-Evidence Reasoning", "Multi-Hop Reasoning", "Cross-Modal Reasoning",
         "Person Understanding", "General Knowledge Extraction"]


@dataclass
class Question:
    video: str
    question_id: str
    question: str
    answer: str
    types: list[str]
    before_clip: int | None  # M3-Bench meaning: last visible clip, inclusive
    video_path: str
    mem_path: str


def load_annotations(path: str | Path) -> list[Question]:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such annotation file") from None
    except json.JSONDecodeError as e:
        raise AnnotationError(f"{path}: not JSON ({e})") from None
    if not isinstance(data, dict):
        raise AnnotationError(f"{path}: expected an object of video id -> {{video_path, mem_path, qa_list}}")
    out = []
    for vid, entry in data.items():
        for qa in entry.get("qa_list", []):
            try:
                out.append(Question(vid, str(qa["question_id"]), qa["question"], str(qa["answer"]),
                                    list(qa.get("type") or []), qa.get("before_clip"),
                                    entry.get("video_path", ""), entry.get("mem_path", "")))
            except KeyError as e:
                raise AnnotationError(f"{path}: video {vid}: a question lacks {e}") from None
    return out


# ---------------------------------------------------------------- judges
_NUMBERS = {w: str(n) for n, w in NUMBER_WORDS.items()}
_STOP = set("a an the of to in on at for and or is are was were be it its this that with by as his her their "
            "he she they i you we my your our".split())


def _tokens(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9]+", text.lower().replace("'s", ""))
    return [_NUMBERS.get(w, w) for w in words if w not in _STOP]


NOT_KNOWN = {"not known", "unknown", "the video does not say", "not in the video"}


class MatchJudge:
    """Deterministic: correct when (nearly) every content word of the ground truth is in the
    answer (numbers and number words are the same; stop words ignored). A question whose truth is
    "not known" (its answer is not in the video) is right when the answer says it is not known."""

    name = "match"

    def __init__(self, recall: float = 0.75):
        self.recall = recall

    def judge(self, question: str, truth: str, answer: str) -> bool:
        if truth.strip().lower().rstrip(".") in NOT_KNOWN:
            return bool(SAYS_UNKNOWN.search(answer))
        want, got = _tokens(truth), set(_tokens(answer))
        if not want:
            return truth.strip().lower() in answer.lower()
        return sum(w in got for w in want) / len(want) >= self.recall


JUDGE_SYSTEM = """You grade answers to questions about a video. You are given the question, the \
ground-truth answer and the answer to grade. Reply Yes when the answer to grade states the \
ground-truth answer (other words or extra details are fine), and No when it states something \
else, misses the key fact, or only repeats the question. Reply with one word: Yes or No."""

# Worked examples as earlier turns: small judges follow them far better than a description.
JUDGE_EXAMPLES = [
    ("What colour is the car?", "Red.", "The car is red.", "Yes"),
    ("How many people are at the table?", "Two.", "4 people.", "No"),
    ("What does the man dislike?", "Jet lag.", "The man does not like.", "No"),
    ("Where is she?", "In the kitchen.", "She is in the kitchen making tea.", "Yes"),
]
JUDGE_PROMPT = "Question: {question}\nGround-truth answer: {truth}\nAnswer to grade: {answer}"


def parse_verdict(reply: str) -> bool | None:
    """Yes -> True, No -> False, anything else -> None."""
    m = re.search(r"\b(yes|no|correct|incorrect|true|false)\b", reply.lower())
    if not m:
        return None
    return m.group(1) in ("yes", "correct", "true")


class LLMJudge:
    """A chat model judges (the M3-Bench criterion); an unusable reply falls back to MatchJudge."""

    def __init__(self, chat, fallback: MatchJudge | None = None):
        self.chat, self.fallback = chat, fallback or MatchJudge()
        self.name = f"llm:{chat.name}"
        self.unparsed = 0

    def judge(self, question: str, truth: str, answer: str) -> bool:
        messages = [{"role": "system", "content": JUDGE_SYSTEM}]
        for q, t, a, verdict in JUDGE_EXAMPLES:
            messages += [{"role": "user", "content": JUDGE_PROMPT.format(question=q, truth=t, answer=a)},
                         {"role": "assistant", "content": verdict}]
        messages.append({"role": "user", "content": JUDGE_PROMPT.format(question=question, truth=truth, answer=answer)})
        reply = self.chat.complete(messages, max_tokens=4)
        verdict = parse_verdict(reply)
        if verdict is None:
            self.unparsed += 1
            log.warning("judge reply %r is neither yes nor no; using the match judge", reply)
            return self.fallback.judge(question, truth, answer)
        return verdict


# ---------------------------------------------------------------- running
@dataclass
class EvalOptions:
    memories: Path
    videos: Path | None = None
    out: Path = Path("results.jsonl")
    workers: int = 1


@dataclass
class Counts:
    answered: int = 0
    resumed: int = 0  # already in the results file
    skipped: int = 0  # neither memory nor video
    ingested: int = 0  # memories built during the run
    failed: int = 0  # a bad video, memory or annotation path: recorded as that question's failure


class Evaluator:
    def __init__(self, agent_factory: Callable, judges: list, options: EvalOptions,
                 ingest: Callable[[Path, Path], None] | None = None):
        """``agent_factory(memory_path)`` -> an Agent over that memory (kept open for the run);
        ``ingest(video, memory)`` builds a missing memory when the video is present."""
        self.agent_factory, self.judges, self.o, self.ingest = agent_factory, judges, options, ingest
        self.agents: dict[str, object] = {}
        self.lock = threading.Lock()
        chats = [getattr(j, "chat", None) for j in judges]
        # local models are not thread-safe: their calls run one at a time; served ones in parallel
        self.serial = not all(getattr(c, "thread_safe", False) for c in chats if c is not None)
        self.model_lock = threading.Lock()

    def memory_path(self, q: Question) -> Path:
        """``--memories/<name>.m3mem``; a name that would leave the folder is an AnnotationError."""
        name = Path(q.mem_path).stem if q.mem_path else q.video
        return inside(self.o.memories, f"{name}.m3mem", q)

    def video_path(self, q: Question) -> Path | None:
        if self.o.videos is None:
            return None
        names = ([Path(q.video_path).name] if q.video_path else []) + [f"{q.video}.mp4"]
        paths = [inside(self.o.videos, n, q) for n in names]
        return next((p for p in paths if p.is_file()), None)

    def run(self, questions: list[Question], progress: Callable[[], None] | None = None) -> Counts:
        counts = Counts()
        done = finished_ids(self.o.out)
        todo, failed = [], []
        for q in questions:
            if q.question_id in done:
                counts.resumed += 1
                continue
            try:
                mem = self.memory_path(q)
                if not mem.is_file():
                    video = self.video_path(q)
                    if video is None or self.ingest is None:
                        counts.skipped += 1
                        continue
                    log.info("ingesting %s -> %s", video, mem)
                    self.ingest(video, mem)
                    counts.ingested += 1
            except InputError as e:  # this question's video or memory is bad: the run goes on
                log.warning("question %s: %s", q.question_id, e)
                failed.append(self._failure(q, e))
                continue
            todo.append(q)
        repair_results(self.o.out)
        self.o.out.parent.mkdir(parents=True, exist_ok=True)
        with open(self.o.out, "a") as out, ThreadPoolExecutor(max(self.o.workers, 1)) as pool:
            for row in itertools.chain(failed, pool.map(self._one, todo)):  # each row written as it comes
                with self.lock:
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                    out.flush()
                if "error" in row:
                    counts.failed += 1
                else:
                    counts.answered += 1
                if progress:
                    progress()
        return counts

    def _failure(self, q: Question, error: Exception) -> dict:
        return {"question_id": q.question_id, "video": q.video, "question": q.question, "truth": q.answer,
                "answer": "", "types": q.types, "before_clip": q.before_clip,
                "verdicts": {j.name: False for j in self.judges}, "error": f"{type(error).__name__}: {error}",
                "rounds": 0, "seconds": 0.0, "timings": {}, "evidence": [], "model": None}

    def _agent(self, q: Question):
        key = str(self.memory_path(q))
        with self.lock:
            if key not in self.agents:
                self.agents[key] = self.agent_factory(self.memory_path(q))
            return self.agents[key]

    def _one(self, q: Question) -> dict:
        try:
            agent = self._agent(q)
        except InputError as e:  # a damaged or foreign memory fails its questions, not the run
            log.warning("question %s: %s", q.question_id, e)
            return self._failure(q, e)
        before = None if q.before_clip is None else int(q.before_clip) + 1
        t = time.perf_counter()
        serial = self.serial or not getattr(agent.chat, "thread_safe", False)
        with self.model_lock if serial else contextlib.nullcontext():
            a = agent.ask(q.question, before_clip=before)
            verdicts = {j.name: bool(j.judge(q.question, q.answer, a.answer)) for j in self.judges}
        return {"question_id": q.question_id, "video": q.video, "question": q.question, "truth": q.answer,
                "answer": a.answer, "types": q.types, "before_clip": q.before_clip, "verdicts": verdicts,
                "rounds": sum(1 for r in a.rounds if r.reply), "seconds": time.perf_counter() - t,
                "timings": a.timings, "evidence": [e.clip for e in a.evidence], "model": a.model}


def inside(folder: Path, name: str, q: Question) -> Path:
    """``folder/name`` when it stays inside ``folder`` (no separators, no ``..``, not absolute)."""
    if not name or Path(name).name != name or name in (".", "..") or name.startswith(".."):
        raise AnnotationError(f"question {q.question_id}: {name!r} (from video {q.video!r}) is not a plain file "
                              f"name inside {folder}")
    path = folder / name
    if not path.resolve().is_relative_to(folder.resolve()):
        raise AnnotationError(f"question {q.question_id}: {name!r} leaves {folder}")
    return path


def repair_results(path: Path) -> None:
    """Cut a results file back to its last complete line (a run killed mid-write leaves a torn
    one; appending after it would merge two rows)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data.endswith(b"\n"):
            return
        keep = data.rfind(b"\n") + 1
        log.warning("%s: dropping a torn last line (%d bytes)", path, len(data) - keep)
        f.truncate(keep)


def read_results(path: str | Path) -> list[dict]:
    """The rows of a results file (JSON lines); a torn or foreign line is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "question_id" in row:
            rows.append(row)
    return rows


def finished_ids(path: Path) -> set[str]:
    """Question ids already in a results file (a torn last line is ignored)."""
    return {row["question_id"] for row in read_results(path)}


# ---------------------------------------------------------------- report
def report(rows: list[dict], judge: str) -> dict:
    """Accuracy overall and per question type under ``judge``; agreement between judges."""
    by_type = {}
    for t in sorted({t for r in rows for t in r["types"]}, key=lambda t: (t not in TYPES, t)):
        by_type[t] = _accuracy([r for r in rows if t in r["types"]], judge)
    judges = sorted({j for r in rows for j in r["verdicts"]})
    agreement = {}
    for i, a in enumerate(judges):
        for b in judges[i + 1:]:
            both = [r for r in rows if a in r["verdicts"] and b in r["verdicts"]]
            if both:
                agreement[f"{a} vs {b}"] = sum(r["verdicts"][a] == r["verdicts"][b] for r in both) / len(both)
    n = len(rows)
    return {"judge": judge, "overall": _accuracy(rows, judge), "by_type": by_type,
            "by_judge": {j: _accuracy(rows, j)["accuracy"] for j in judges},
            "agreement": agreement, "mean_rounds": sum(r["rounds"] for r in rows) / n if n else None,
            "mean_seconds": sum(r["seconds"] for r in rows) / n if n else None}


def _accuracy(rows: list[dict], judge: str) -> dict:
    ok = [r["verdicts"][judge] for r in rows if judge in r["verdicts"]]
    return {"n": len(ok), "accuracy": sum(ok) / len(ok) if ok else None}


def table(rep: dict) -> str:
    lines = [f"{'question type':<32} {'n':>5} {'accuracy':>9}"]
    for t, v in rep["by_type"].items():
        lines.append(f"{t:<32} {v['n']:>5} {_pct(v['accuracy']):>9}")
    lines.append(f"{'overall (' + rep['judge'] + ')':<32} {rep['overall']['n']:>5} {_pct(rep['overall']['accuracy']):>9}")
    for j, a in rep["by_judge"].items():
        lines.append(f"  judge {j:<26} {'':>5} {_pct(a):>9}")
    for pair, a in rep["agreement"].items():
        lines.append(f"  agreement {pair}: {_pct(a)}")
    if rep["mean_rounds"] is not None:
        lines.append(f"  mean rounds {rep['mean_rounds']:.2f}, mean seconds per question {rep['mean_seconds']:.1f}")
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def chart(rep: dict, path: Path) -> None:
    """Bar chart of accuracy per question type (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rep["by_type"]) + ["Overall"]
    vals = [100 * (v["accuracy"] or 0) for v in rep["by_type"].values()] + [100 * (rep["overall"]["accuracy"] or 0)]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(names) + 1.2))
    ax.barh(names[::-1], vals[::-1], color=["#444"] + ["#4a7ab5"] * (len(names) - 1))
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"accuracy % (judge: {rep['judge']})")
    for y, v in enumerate(vals[::-1]):
        ax.text(v + 1, y, f"{v:.1f}", va="center")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
