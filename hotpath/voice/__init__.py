"""The voice edge: watch audio over MQTT -> VAD -> speech-to-text (gRPC) -> intent -> action -> reply.

Pure domain (no Ray, no network client; ``tests/voice/test_layers.py`` checks it):
``audio`` (payload framing, validation, QoS-1 re-ordering), ``vad`` (Silero + segmenter),
``stream`` (one device's segmentation), ``stt`` / ``stt_pocketsphinx`` / ``stt_whisper`` /
``grammar`` (engines), ``tts`` (espeak-ng, Piper), ``keyword_intent`` / ``routing``,
``messages`` (trace events, actions), ``pipeline`` (one utterance end to end over injected ports),
``limits`` (counters, flood guard), ``settings``.

Adapters and tools: ``cloud`` (HTTP cloud query client, retry queue, webhook), ``sip`` (SIP dialer),
``sim`` (a simulated watch), ``bench`` and ``cli``. Ray shells live in ``hotpath.actors.voice_*``,
the gRPC service in ``hotpath.deployments.stt``, the app in ``hotpath.graphs.voice_edge_app``.
"""
