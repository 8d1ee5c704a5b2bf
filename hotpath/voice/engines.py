"""Build the speech-to-text engine the settings name (the engines import the interface, not this)."""

from __future__ import annotations

from hotpath.voice.settings import VoiceSettings
from hotpath.voice.stt import SttEngine

__all__ = ["create_engine"]


def create_engine(voice: VoiceSettings) -> SttEngine:
    """One replica of the engine ``voice.stt.engine`` names."""
    if voice.stt.engine == "faster-whisper":
        from hotpath.voice.stt_whisper import WhisperEngine

        return WhisperEngine.from_settings(voice.stt)
    from hotpath.voice.stt_pocketsphinx import PocketsphinxEngine

    return PocketsphinxEngine.from_settings(voice)
