"""Chat models: messages in, text out. Used by the control agent, the judge and VLM memorizers.

- ``OpenAIChat``: any OpenAI-compatible server (vLLM, SGLang, Ollama, llama.cpp server, hosted)
  through the ``openai`` client, with a timeout and bounded retries on transient errors only.
- ``TransformersChat``: a local transformers causal-LM checkpoint (Qwen2.5 / Qwen3 /
  M3-Agent-Control style) or a GGUF file; ``offline_default()`` assembles the packaged
  Qwen2.5-0.5B-Instruct GGUF (see ``models.gguf``).

Messages are OpenAI-style dicts: {"role": "system" | "user" | "assistant", "content": str | list}.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)


class ChatError(RuntimeError):
    """The chat model failed: server unreachable or erroring after retries, or a bad request."""


class ChatModel(Protocol):
    name: str

    def complete(self, messages: list[dict], max_tokens: int = 512, temperature: float = 0.0) -> str: ...


@dataclass
class Usage:
    calls: int = 0
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class OpenAIChat:
    """An OpenAI-compatible chat endpoint. Retries (with the client's exponential back-off) happen
    only on connection errors, timeouts, 408/409/429 and 5xx; other errors fail at once."""

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 120.0, retries: int = 3):
        try:
            import openai
        except ImportError as e:
            raise ImportError("served models need the openai client: pip install openai") from e
        import os

        self.openai = openai
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or os.environ.get("OPENAI_API_KEY") or "none",
                                    timeout=timeout, max_retries=retries)
        self.name = model
        self.base_url = base_url
        self.usage = Usage()

    def complete(self, messages: list[dict], max_tokens: int = 512, temperature: float = 0.0) -> str:
        t = time.perf_counter()
        try:
            r = self.client.chat.completions.create(model=self.name, messages=messages,
                                                    max_tokens=max_tokens, temperature=temperature)
        except self.openai.APIError as e:
            raise ChatError(f"{self.base_url or 'OpenAI'} ({self.name}): {type(e).__name__}: {e}") from e
        finally:
            self.usage.calls += 1
            self.usage.seconds += time.perf_counter() - t
        if not r.choices or r.choices[0].message is None:
            raise ChatError(f"{self.base_url or 'OpenAI'} ({self.name}): reply without choices")
        if r.usage is not None:
            self.usage.prompt_tokens += r.usage.prompt_tokens or 0
            self.usage.completion_tokens += r.usage.completion_tokens or 0
        return r.choices[0].message.content or ""
