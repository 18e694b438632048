"""The command line's arguments: one sub-parser per command."""

from __future__ import annotations

import argparse

EPILOG = """exit codes: 0 success, 1 failure (a full disk, or an internal error: please report it;
-v shows its traceback), 2 bad usage or settings, 3 bad or missing input file (video, memory, annotations;
for ingest: some videos failed, the others are done), 4 model or model-server failure, 130 interrupted.
settings come from flags, then M3MEM_* environment variables, then --config FILE (TOML), then defaults."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="m3mem", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Long-term memory of long videos: ingest videos into memories, then search "
                    "them and ask questions.")
    p.add_argument("--config", metavar="FILE", help="TOML settings file (see README)")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="more logging (-vv: debug); internal errors print their traceback")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser(
        "ingest", help="watch videos and write their memories (resumable)",
        description="Cut each video into clips, perceive faces, voices, speech (and optionally "
                    "on-screen text), match people across clips, and write episodic and semantic "
                    "memories, one transaction per clip. Re-running skips committed clips, so a "
                    "killed run resumes where it stopped; perception is cached on disk.")
    s.add_argument("videos", nargs="+", metavar="INPUT",
                   help="video files, folders of videos (recursive), or manifests (.jsonl / .csv with "
                        "id, video and optional memory columns)")
    s.add_argument("--memory", required=True, metavar="PATH",
                   help="memory file for one video (e.g. talk.m3mem); otherwise a folder holding "
                        "<id>.m3mem per video, the id being the file name, the path inside a folder "
                        "input (sub/clip) or the manifest's id")
    s.add_argument("--workers", type=int, metavar="N",
                   help="worker processes (or Ray actors), each loading the models once (default 1)")
    s.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run the workers as Ray actors: on a local Ray started here, or on the cluster "
                        "at ADDRESS (auto, ray://head:10001); memories must be on storage every node sees")
    s.add_argument("--worker-cpus", type=float, help="CPUs each Ray actor reserves (default 1)")
    s.add_argument("--worker-gpus", type=float, help="GPUs each Ray actor reserves (default 0)")
    s.add_argument("--worker-retries", type=int, help="times a video is retried after its worker died (default 2)")
    s.add_argument("--report", metavar="PATH",
                   help="write a JSON report: one entry per video (status done/skipped/failed, error, "
                        "clips, seconds, real-time factor, worker) and a summary")
    s.add_argument("--memorizer", help="perception (offline default) or openai (a served VLM; "
                                       "set --memorizer-model / --memorizer-base-url)")
    s.add_argument("--memorizer-model", help="model name on the server")
    s.add_argument("--memorizer-base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    s.add_argument("--fps", type=float, help="frames per second sampled for faces (default 1)")
    s.add_argument("--clip-seconds", type=float, help="clip length (default 30)")
    s.add_argument("--scene-text", action="store_const", const=True, help="read on-screen text (rapidocr)")
    s.add_argument("--asr", help="tiny.en (default), base, a CTranslate2 folder or an openai-whisper .pt")
    s.add_argument("--asr-language", help="spoken language for a multilingual ASR model, e.g. en (default) or fr; auto detects it per clip")
    s.add_argument("--asr-beam", type=int, help="beam width of the ASR decoding (default: 5 on CUDA, 1 on the CPU: fewer errors, slower)")
    s.add_argument("--faces", help="dlib (default: packaged, each face averaged with its mirror image), "
                   "dlib-single (no mirror image: about 10%% faster perception, weaker identity) "
                   "or an insightface model folder (e.g. buffalo_l)")
    s.add_argument("--cache-dir", help="perception cache folder (default ~/.cache/m3mem)")
    s.add_argument("--device", help="auto (default: CUDA when present), cpu, or cuda[:N] (an error when absent)")
    s.add_argument("--json", action="store_true", help="print the report (summary and one entry per video) as JSON")
    s.add_argument("--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser(
        "ask", help="answer a question from a memory (interactive without a question)",
        description="Answer a question by letting a chat model alternate [Search] (retrieve from the "
                    "memory) and [Answer], for at most --rounds turns. Without a question, opens a "
                    "prompt that keeps the memory and the model loaded between questions.")
    s.add_argument("memory", help="memory file (.m3mem)")
    s.add_argument("question", nargs="?", help="the question (omit for an interactive prompt)")
    s.add_argument("--before-clip", type=int, metavar="N", help="answer as if only clips < N were seen")
    s.add_argument("--llm", help="qwen2.5-coder-0.5b (offline default), openai, or a local model folder / .gguf")
    s.add_argument("--llm-model", help="model name on the server (--llm openai)")
    s.add_argument("--llm-base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    s.add_argument("--rounds", type=int, help="most model turns per question (default 5)")
    s.add_argument("--top-k", type=int, dest="ask_top_k", help="clips shown per search (default 2)")
    s.add_argument("--device", help="auto (default: CUDA when present), cpu, or cuda[:N] (an error when absent)")
    s.add_argument("--json", action="store_true",
                   help="print one JSON object: answer, evidence [{clip, start, end, memories}], rounds, timings")

    s = sub.add_parser(
        "eval", help="run M3-Bench-style annotation files and report accuracy per question type",
        description="Answer every question of an M3-Bench-format annotation file with the control "
                    "agent (honouring before_clip), judge the answers, and report accuracy overall "
                    "and per question type. Results are appended to --out as JSON lines, so a "
                    "re-run resumes; missing memories are ingested when --videos holds the video; "
                    "questions with neither are skipped and counted.")
    s.add_argument("annotations", help="annotation JSON (video id -> {video_path, mem_path, qa_list})")
    s.add_argument("--memories", required=True, metavar="DIR", help="folder of <video>.m3mem memories")
    s.add_argument("--videos", metavar="DIR", help="folder of videos, ingested when their memory is missing")
    s.add_argument("--out", default="results.jsonl", help="results file, JSON lines (default results.jsonl)")
    s.add_argument("--judge", choices=["llm", "match", "both"], default="both",
                   help="llm: the chat model judges (M3-Bench criterion); match: deterministic "
                        "normalised match; both (default): report both and their agreement")
    s.add_argument("--workers", type=int, default=1, help="questions answered in parallel (served models)")
    s.add_argument("--limit", type=int, help="only the first N questions")
    s.add_argument("--report", metavar="PATH", help="write the report as JSON")
    s.add_argument("--chart", metavar="PATH", help="write a PNG bar chart of accuracy per type")
    s.add_argument("--llm", help="chat model for the agent and the LLM judge (default qwen2.5-coder-0.5b)")
    s.add_argument("--llm-model", help="model name on the server (--llm openai)")
    s.add_argument("--llm-base-url", help="OpenAI-compatible endpoint")
    s.add_argument("--rounds", type=int, help="most model turns per question (default 5)")
    s.add_argument("--device", help="auto (default: CUDA when present), cpu, or cuda[:N] (an error when absent)")
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    s.add_argument("--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser("show", help="list a memory's characters and each clip's memories",
                       description="List a memory's characters (ids, member faces/voices, clips "
                                   "they appear in) and every clip's memories.")
    s.add_argument("memory", help="memory file (.m3mem)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--raw", action="store_true", help="show face/voice ids instead of characters")

    s = sub.add_parser("search", help="retrieve the clips (or memories) that match a query",
                       description="Retrieve from a memory the way the agent does: clip-wise by "
                                   "default; memory-wise for character-id/name queries; "
                                   "restricted to a character when the query names one; CLIP_n "
                                   "references return those clips.")
    s.add_argument("memory", help="memory file (.m3mem)")
    s.add_argument("query", help='e.g. "What does <character_0> say about the deal?"')
    s.add_argument("--top-k", type=int, help="clips (or memories) to return (default 5)")
    s.add_argument("--mode", choices=["max", "mean", "sum"], help="clip scoring (default max)")
    s.add_argument("--threshold", type=float, help="drop results scoring below this (default 0)")
    s.add_argument("--ranker", choices=["dense", "lexical", "hybrid"],
                   help="dense embeddings (default), BM25 over the memories' words, or both fused")
    s.add_argument("--before-clip", type=int, metavar="N", help="only see clips before clip N")
    s.add_argument("--json", action="store_true", help="print one JSON object")

    s = sub.add_parser("browse", help="write a memory as a static web site (characters, timeline, search)",
                       description="Write a self-contained static site (HTML, CSS, a little JS; no CDN, "
                                   "no server needed; opens from file://): characters with face crops, "
                                   "names, voices and where they appear; a paged timeline of clips with "
                                   "mentions shown as people; a search page; with --results, a page per "
                                   "evaluated question.")
    s.add_argument("memory", help="memory file (.m3mem)")
    s.add_argument("--out", metavar="DIR", help="site folder (default MEMORY with .site instead of .m3mem)")
    s.add_argument("--results", metavar="JSONL", help="an m3mem eval --out file: one page per question")
    s.add_argument("--serve", nargs="?", type=int, const=8000, metavar="PORT",
                   help="then serve the site on 127.0.0.1:PORT (default 8000; 0 picks a free port)")
    s.add_argument("--json", action="store_true", help="print pages, sizes and seconds as JSON")

    s = sub.add_parser("export", help="write a memory's graph as JSON (node-link) or GraphML",
                       description="Export the memory graph: text nodes (kind, clip, times, text) and "
                                   "face/voice nodes (character, name) joined by weighted mention edges; "
                                   "networkx.read_graphml / node_link_graph read it back.")
    s.add_argument("memory", help="memory file (.m3mem)")
    s.add_argument("--format", choices=["json", "graphml"], default="json", help="default json")
    s.add_argument("--out", metavar="FILE", help="output file (default: standard output)")
    s.add_argument("--embeddings", action="store_true", help="include embeddings (base64 float32)")

    s = sub.add_parser("import-m3agent", help="turn an M3-Agent memory graph (.pkl) into an m3mem memory",
                       description="Read an M3-Agent VideoGraph pickle (M3-Bench mem_path files) without "
                                   "running it: only VideoGraph, its Node and numpy arrays are accepted, "
                                   "anything else is refused. Faces and voices keep their embeddings; "
                                   "memories are re-embedded with the text embedder; characters are "
                                   "rebuilt from the Equivalence memories.")
    s.add_argument("graph", help="M3-Agent memory graph (.pkl)")
    s.add_argument("--out", required=True, metavar="MEMORY", help="new memory file (.m3mem)")
    s.add_argument("--clip-seconds", type=float, help="clip length of the source (default 30)")
    s.add_argument("--json", action="store_true", help="print counts as JSON")
    return p
