"""An OpenAI-compatible chat client (vLLM, llama.cpp's server, any such API) through ``openai``.

``complete(messages)`` returns the reply text or raises :class:`~hotpath.errors.ServiceUnavailable`
(unreachable, timed out, an error status, an empty reply): the cloud service then answers
extractively. No retries: an answer late for speech is worth less than the fallback now.
"""

from __future__ import annotations

from hotpath.cloud.settings import LlmSettings
from hotpath.errors import ServiceUnavailable

__all__ = ["OpenAIChat"]


class OpenAIChat:
    def __init__(self, settings: LlmSettings, *, base_url: str | None = None) -> None:
        import openai

        self.settings = settings
        self.base_url = base_url or settings.base_url()
        self._client = openai.OpenAI(base_url=self.base_url, api_key=settings.api_key.get_secret_value() or "none",
                                     timeout=settings.timeout_s, max_retries=0)
        self.last_usage: dict[str, int] = {}

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int | None = None,
                 timeout_s: float | None = None) -> str:
        import openai

        try:
            resp = self._client.chat.completions.create(
                model=self.settings.model,
                messages=messages,
                max_tokens=max_tokens or self.settings.max_tokens,
                temperature=self.settings.temperature,
                timeout=timeout_s or self.settings.timeout_s,
            )
        except openai.APITimeoutError as exc:
            raise ServiceUnavailable(f"LLM at {self.base_url} timed out") from exc
        except openai.APIConnectionError as exc:
            raise ServiceUnavailable(f"LLM at {self.base_url} unreachable") from exc
        except openai.APIError as exc:
            raise ServiceUnavailable(f"LLM at {self.base_url} failed: {type(exc).__name__}: {str(exc)[:200]}") from exc
        usage = getattr(resp, "usage", None)
        self.last_usage = {"completion_tokens": getattr(usage, "completion_tokens", 0) or 0,
                           "prompt_tokens": getattr(usage, "prompt_tokens", 0) or 0}
        text = (resp.choices[0].message.content or "").strip() if resp.choices else ""
        if not text:
            raise ServiceUnavailable("LLM returned an empty reply")
        return text

    def close(self) -> None:
        self._client.close()
