"""Chat models: messages in, text out. Used by the control agent, the judge and VLM memorizers.

- ``OpenAIChat``: any OpenAI-compatible server (vLLM, SGLang, Ollama, llama.cpp server, hosted),
  with an overall deadline, a reply size cap and bounded retries on transient errors only.
- ``TransformersChat``: a local transformers causal-LM checkpoint (Qwen2.5 / Qwen3 /
  M3-Agent-Control style) or a GGUF file; ``offline_default()`` assembles the packaged
  Qwen2.5-Coder-0.5B-Instruct GGUF (see ``models.gguf``).

Messages are OpenAI-style dicts: {"role": "system" | "user" | "assistant", "content": str | list}.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from models.device import pick_device
from models.http import HTTPFailure, Limits, post_json
from models.weights import quiet_loading
from preprocessing.errors import ModelError

log = logging.getLogger(__name__)
OFFLINE_NAME = "qwen2.5-coder-0.5b-instruct (offline)"


class ChatError(ModelError):
    """The chat model failed: server unreachable or erroring after retries, or a bad request."""


class ChatModel(Protocol):
    name: str

    def complete(self, messages: list[dict], max_tokens: int = 512, temperature: float = 0.0,
                 prefix: str = "") -> str:
        """The assistant's reply. With ``prefix`` the reply is made to start with it (local models
        continue from it; served ones are told to), and is returned including it."""
        ...


@dataclass
class Usage:
    calls: int = 0
    seconds: float = 0.0
    prompt_tokens: int = 0
    reused_tokens: int = 0  # prompt tokens whose keys/values came from the prefix cache
    completion_tokens: int = 0


class OpenAIChat:
    """An OpenAI-compatible chat endpoint (vLLM, SGLang, Ollama, llama.cpp server, hosted APIs).

    Each attempt must finish within ``timeout`` seconds in all (a server that trickles bytes is
    cut off), replies above ``max_bytes`` are refused, and only connection errors, timeouts,
    408/409/429 and 5xx are retried (``retries`` times, with back-off). Every failure, a reply that
    is not JSON or not shaped like a chat completion included, is a ChatError naming the server."""

    thread_safe = True  # requests may run in parallel (evaluation workers)

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 120.0, retries: int = 3, max_bytes: int = 32 << 20):
        import os

        self.name = model
        self.base_url = (base_url or "https://api.openai.com/v1").rstrip("/")
        self._key = api_key or os.environ.get("OPENAI_API_KEY") or "none"
        self.limits = Limits(timeout=timeout, retries=retries, max_bytes=max_bytes)
        self.usage = Usage()

    def complete(self, messages: list[dict], max_tokens: int = 512, temperature: float = 0.0,
                 prefix: str = "") -> str:
        t = time.perf_counter()
        if prefix:
            messages = messages[:-1] + [{**messages[-1], "content": _text(messages[-1]["content"])
                                         + f"\nStart your reply with: {prefix}"}]
        where = f"{self.base_url} ({self.name})"
        try:
            r = post_json(f"{self.base_url}/chat/completions",
                          {"model": self.name, "messages": messages, "max_tokens": max_tokens,
                           "temperature": temperature},
                          {"Authorization": f"Bearer {self._key}"}, self.limits)
        except HTTPFailure as e:
            raise ChatError(f"{where}: {e}") from e
        finally:
            self.usage.calls += 1
            self.usage.seconds += time.perf_counter() - t
        reply = _reply_text(r)
        if reply is None:
            raise ChatError(f"{where}: BadReply: no choices[0].message.content in {str(r)[:200]!r}")
        usage = r.get("usage") if isinstance(r.get("usage"), dict) else {}
        self.usage.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        self.usage.completion_tokens += int(usage.get("completion_tokens") or 0)
        reply = reply.strip()
        return reply if reply.startswith(prefix) else f"{prefix} {reply}".strip()


def _reply_text(r: dict) -> str | None:
    """``choices[0].message.content`` of a chat completion, or None when the reply is not one."""
    choices = r.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message")
    if not isinstance(message, dict):
        return None
    content = message.get("content")
    if content is None:
        return ""
    return content if isinstance(content, str) else None


def _text(content) -> str:
    """Message content as text (image parts are dropped: these models read text only)."""
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")


class ChatTokenizer:
    """A local chat model's tokenizer: its ``tokenizer.json`` run by the ``tokenizers`` library,
    its chat template rendered by transformers' own renderer (the same prompt, token for token,
    as ``AutoTokenizer``). Loading it this way takes about 0.5 s against ``AutoTokenizer``'s 1.1 s,
    which parses the JSON file again in Python; a folder without ``tokenizer.json`` goes through
    ``AutoTokenizer`` once, for its template and its tokenizer converted to ``tokenizers``."""

    SPECIAL = ("bos_token", "eos_token", "unk_token", "pad_token")

    def __init__(self, backend, template: str, special: dict[str, str]):
        self.backend = backend  # a tokenizers.Tokenizer
        self.template = template
        self.special = special  # e.g. {"eos_token": "<|im_end|>"}: the template may read them
        self.eos_id = self.token_id(special.get("eos_token"))
        self.pad_id = self.token_id(special.get("pad_token"))
        if self.pad_id is None:
            self.pad_id = self.eos_id

    @classmethod
    def load(cls, path: Path) -> ChatTokenizer:
        """Raises ValueError when the folder has no chat template or an unreadable tokenizer."""
        if (path / "tokenizer.json").is_file():
            import tokenizers

            config_file = path / "tokenizer_config.json"
            config = json.loads(config_file.read_text()) if config_file.is_file() else {}
            try:
                backend = tokenizers.Tokenizer.from_file(str(path / "tokenizer.json"))
            except Exception as e:  # the Rust library raises a bare Exception for a file it cannot read
                raise ValueError(f"tokenizer.json: {e}") from e
            template_file = path / "chat_template.jinja"
            template = template_file.read_text() if template_file.is_file() else config.get("chat_template")
            special = {k: _token_text(config.get(k)) for k in cls.SPECIAL}
        else:
            from transformers import AutoTokenizer

            auto = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            backend, template = auto.backend_tokenizer, auto.chat_template
            special = {k: _token_text(getattr(auto, k, None)) for k in cls.SPECIAL}
        if isinstance(template, list):  # named templates: the default one
            template = next((t.get("template") for t in template if t.get("name") == "default"), None)
        if not isinstance(template, str):
            raise ValueError("the tokenizer has no chat template")
        return cls(backend, template, {k: v for k, v in special.items() if v})

    def render(self, messages: list[dict]) -> str:
        """The prompt for ``messages``, ending where the assistant's reply starts."""
        from transformers.utils.chat_template_utils import render_jinja_template

        rendered, _ = render_jinja_template([messages], chat_template=self.template,
                                            add_generation_prompt=True, **self.special)
        return rendered[0]

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return self.backend.decode(ids, skip_special_tokens=True)

    def token_id(self, token: str | None) -> int | None:
        return None if token is None else self.backend.token_to_id(token)


def _token_text(token) -> str | None:
    """A special token as written in a tokenizer config: a string or ``{"content": ...}``."""
    if isinstance(token, dict):
        token = token.get("content")
    return token if isinstance(token, str) and token else None


class TransformersChat:
    """A local causal LM with a chat template, from a checkpoint folder or a ``.gguf`` file.
    Greedy decoding by default; CUDA (float16) when present, else CPU (float32).

    Prefix caching: the keys and values of the last few prompts are kept (``prefix_cache``
    entries); a new prompt starting with the same tokens (the fixed system prompt and examples,
    or the previous round of the same question plus what it found since) reuses them and only its
    new tokens are computed. On a CPU the prompt is most of a turn's time."""

    MIN_REUSE = 32  # tokens: a shorter common prefix is not worth a cache entry

    def __init__(self, path: str | Path, device: str | None = None, name: str | None = None,
                 cache: Path | None = None, prefix_cache: int = 4):
        """``cache``: where a ``.gguf`` file is converted once into a plain folder (needed for
        ``.gguf`` paths only). ``prefix_cache``: prompts whose keys/values are kept (0: none)."""
        try:
            import torch
            from transformers import AutoModelForCausalLM
        except ImportError as e:
            raise ImportError("local chat models need torch and transformers") from e
        path = Path(path)
        if path.suffix == ".gguf" and path.is_file():  # converted once into a plain folder
            from models.gguf import gguf_to_checkpoint

            if cache is None:
                raise ValueError(f"{path}: a .gguf model is converted once into a cache folder: pass cache=")
            path = gguf_to_checkpoint(path, cache / "gguf" / path.stem)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such model folder")
        self.torch = torch
        self.device = pick_device(device)
        # float32 on CPU: bfloat16 matmuls there are several times slower for the prompt
        dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        quiet_loading()
        try:
            self.tokenizer = ChatTokenizer.load(path)
            self.model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, dtype=dtype)
        except (OSError, ValueError) as e:
            raise ModelError(f"{path}: cannot load the chat model ({e})") from e
        self.model.to(self.device).eval()
        self.name = name or path.name
        self.usage = Usage()
        self.prefix_cache = prefix_cache
        self._kept: list[tuple[list[int], object]] = []  # (token ids, their cache), most recent last

    def complete(self, messages: list[dict], max_tokens: int = 512, temperature: float = 0.0,
                 prefix: str = "") -> str:
        return self._generate(messages, max_tokens, temperature, prefix)

    def complete_quoting(self, messages: list[dict], sources: list[str], also: list[str] = (),
                         max_tokens: int = 48, prefix: str = "") -> str:
        """Like ``complete`` (greedy), but what follows ``prefix`` can only be a quotation: a run
        of consecutive tokens of one of ``sources`` (starting and ending anywhere, optionally
        closed by a full stop) or one of ``also`` whole. The model still chooses what to quote;
        it cannot write words the sources do not hold in that order."""
        return self._generate(messages, max_tokens, 0.0, prefix, lambda n: Quotation(self.tokenizer, sources, also, n))

    def _generate(self, messages: list[dict], max_tokens: int, temperature: float, prefix: str,
                  constraint=None) -> str:
        t = time.perf_counter()
        msgs = [{"role": m["role"], "content": _text(m["content"])} for m in messages]
        tokens = self.tokenizer.encode(self.tokenizer.render(msgs) + prefix)
        ids = self.torch.tensor([tokens], device=self.device)
        past, reused = self._reuse(tokens)
        sample = temperature > 0
        allowed = {"prefix_allowed_tokens_fn": constraint(len(tokens))} if constraint else {}
        with self.torch.inference_mode():
            out = self.model.generate(ids, attention_mask=self.torch.ones_like(ids), max_new_tokens=max_tokens,
                                      do_sample=sample,
                                      temperature=temperature if sample else None, top_p=None, top_k=None,
                                      past_key_values=past, return_dict_in_generate=True,
                                      pad_token_id=self.tokenizer.pad_id,
                                      **allowed)
        seq = out.sequences[0]
        if self.prefix_cache and out.past_key_values is not None:
            self._kept.append((seq.tolist(), out.past_key_values))
            del self._kept[:-self.prefix_cache]
        new = seq[len(tokens):]
        self.usage.calls += 1
        self.usage.seconds += time.perf_counter() - t
        self.usage.prompt_tokens += len(tokens)
        self.usage.reused_tokens += reused
        self.usage.completion_tokens += int(new.shape[0])
        return (prefix + self.tokenizer.decode(new.tolist())).strip()

    def _reuse(self, tokens: list[int]):
        """The kept cache sharing the longest token prefix with ``tokens``, cut to that prefix
        (and taken out of the kept list: generation extends it), or None; and its length."""
        best, best_n = -1, 0
        for i, (kept, cache) in enumerate(self._kept):
            n = min(len(tokens) - 1, cache.get_seq_length())  # >= 1 token must be computed
            same = 0
            while same < n and kept[same] == tokens[same]:
                same += 1
            if same > best_n:
                best, best_n = i, same
        if best < 0 or best_n < self.MIN_REUSE:
            return None, 0
        _, cache = self._kept.pop(best)
        extra = cache.get_seq_length() - best_n
        if extra:
            cache.crop(-extra)
        return cache, best_n


_IN_QUOTES = re.compile(r'"([^"]+)"')


class Quotation:
    """A ``prefix_allowed_tokens_fn`` for ``generate``: the tokens after the first ``start`` must
    follow one source's tokens in order (from any position), or be one of ``also`` whole; a full
    stop may close a quotation, and it may end after any token. Each source is tokenized with a
    space before it, and the spans it holds in double quotes once more on their own, so a
    quotation may start with a sentence's first word the way the model writes it after a colon."""

    def __init__(self, tokenizer: ChatTokenizer, sources: list[str], also: list[str], start: int):
        def encode(text: str) -> list[int]:
            return tokenizer.encode(" " + text.strip())

        texts = [*sources, *(span for src in sources for span in _IN_QUOTES.findall(src))]
        self.seqs = [encode(t) for t in dict.fromkeys(texts) if t.strip()]
        self.whole = [encode(a) for a in also if a.strip()]
        self.positions: dict[int, list[tuple[int, int]]] = {}  # token -> (source, position)
        for i, seq in enumerate(self.seqs):
            for p, tok in enumerate(seq):
                self.positions.setdefault(tok, []).append((i, p))
        ends = {tokenizer.eos_id, tokenizer.token_id("<|im_end|>")}
        self.ends = sorted(e for e in ends if e is not None)
        stop = tokenizer.token_id(".")
        self.closing = set(self.ends) | ({stop} if stop is not None else set())
        self.start = start
        self.first = sorted(set(self.positions) | {seq[0] for seq in self.whole})

    def __call__(self, batch_id: int, input_ids) -> list[int]:
        said = input_ids[self.start:].tolist()
        if not said:
            return self.first
        if said[-1] in self.ends:
            return self.ends
        nxt, may_end = self._next(said)
        if not nxt and not may_end:  # only a closing full stop can have led here
            return self.ends
        return sorted(nxt | (self.closing if may_end else set()))

    def _next(self, said: list[int]) -> tuple[set[int], bool]:
        """Tokens that continue ``said`` as a quotation, and whether it may end here (a passage
        of a source may end anywhere, a fixed answer only when whole)."""
        n, out, may_end = len(said), set(), False
        for i, p in self.positions.get(said[0], []):
            seq = self.seqs[i]
            if seq[p:p + n] == said:
                may_end = True
                if p + n < len(seq):
                    out.add(seq[p + n])
        for seq in self.whole:
            if seq[:n] == said:
                if n < len(seq):
                    out.add(seq[n])
                else:
                    may_end = True
        return out, may_end


def offline_default(cache: Path, device: str | None = None) -> TransformersChat:
    """Qwen2.5-Coder-0.5B-Instruct from the packaged GGUF (joined, verified and converted once
    into ``cache``)."""
    from models.gguf import offline_checkpoint

    return TransformersChat(offline_checkpoint(cache), device=device, name=OFFLINE_NAME)
