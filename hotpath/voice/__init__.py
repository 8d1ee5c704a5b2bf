"""The voice edge: watch audio over MQTT -> VAD -> speech-to-text (gRPC) -> intent -> action -> reply.

Pure domain (no Ray, no network client; ``tests/voice/test_layers.py`` checks it):
``audio`` (payload framing, validation, QoS-1 re-ordering), ``vad`` (Silero + segmenter),
``stream`` (one device's segmentation), ``device`` (one device's session: VAD -> STT -> pipeline),
``ingress`` (validation, flood guard, device -> session host), ``retry`` (the cloud retry queue and port),
``stt`` (interface) / ``engines`` (the factory) / ``stt_pocketsphinx`` / ``stt_whisper`` /
``grammar`` (engines), ``tts`` (espeak-ng, Piper), ``keyword_intent`` / ``routing``,
``messages`` (trace events, actions), ``pipeline`` (one utterance end to end over injected ports),
``limits`` (counters, flood guard), ``settings``, and the tenant's command context: ``context`` (the
YAML format, one file:line error), ``context_compile`` (JSGF, slot parser, training rows, actions and
replies), ``context_rhino`` (Picovoice Rhino import), ``context_live`` (hot reload; docs/contexts.md).

Adapters live outside: ``hotpath.clients`` (cloud HTTP, webhook, SIP dialer, STT gRPC client),
``hotpath.streams.mqtt``; Ray shells in ``hotpath.actors.voice_ingress`` / ``voice_host`` (session hosts),
the gRPC server in ``hotpath.deployments.stt`` (+ ``stt_actor``), the app in ``hotpath.graphs.voice_edge_app``,
the simulator and benchmark in ``bench/`` and the command in ``hotpath.commands.voice``.
"""
