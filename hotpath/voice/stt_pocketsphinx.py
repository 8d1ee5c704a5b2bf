"""The embedded STT engine: pocketsphinx (en-US model inside the wheel), no download.

Pocketsphinx's general language model alone gets short synthetic commands wrong (0 of 8 measured),
while a command grammar gets them right but forces *every* sentence into a command. So one replica
has two decoders for the same audio, fed incrementally while the person speaks (the second only
when needed, see below):

* ``grammar``: a JSGF grammar compiled from the tenant's command context and vocabulary
  (:mod:`hotpath.voice.grammar`, :mod:`hotpath.voice.context`);
* ``lm``: the general en-US n-gram model, for free-form questions.

At the end of the utterance the grammar's command is kept only when it explains the audio about as
well as the unconstrained decoder: its words must cover ``grammar_min_coverage`` of the frames the
LM decoder put words on (a forced fit leaves speech under silence), and its per-frame log score must
beat the LM's by ``grammar_min_margin`` (x1e-4), and the LM must not have heard a question (its first
word what/how/why/...: a grammar can fit a question's rhythm surprisingly well), and the grammar's
log score per frame under its words must not be hopeless (``grammar_reject_score``). Otherwise the
LM transcript is the answer. The thresholds were set on espeak-ng speech; they are settings.

The general model costs about twice the grammar's CPU (measured here: grammar 0.02, ``fast`` LM 0.035
CPU s per audio s), and most utterances at a site are commands the grammar fits well. So by default
(``lm_mode="lazy"``) only the grammar decodes while the person speaks, and the audio is kept. The LM
is consulted only when the grammar is unconvincing:

* while audio streams, the grammar's partial hypothesis is checked every 0.5 s; once its log score
  per frame falls below ``lm_start_score`` (it looks like a question), the LM starts mid-stream: it
  catches up on the kept audio and streams from there on, so only the tail remains at the end;
* at the end, a command whose log score per frame under its words is at least
  ``grammar_accept_score`` is taken as it is; otherwise (or with no command at all) the LM decodes
  the kept audio then, and the rules above decide.

A command whose fit stays convincing never touches the LM. ``lm_mode="parallel"`` runs both decoders
on every utterance. Pocketsphinx releases the GIL inside ``process_raw`` (measured: two decoders in
two threads take the time of one), so the replicas of one process decode in parallel.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path

from hotpath.errors import HotpathError, ModelError
from hotpath.voice.context import DEFAULT_CONTEXT, Context
from hotpath.voice.context_live import file_version
from hotpath.voice.grammar import command_grammar
from hotpath.voice.rejection import Features, RejectionPolicy, backed_share, judge
from hotpath.voice.stt import SttEngine, SttHints, SttStream, Transcript

__all__ = ["PocketsphinxEngine"]

log = logging.getLogger(__name__)

_PARTIAL_EVERY = 16000
_LAZY_MIN_FRAMES = 60  # a partial grammar score over less than 0.6 s says too little to start the LM on

LM_PRESETS = {
    # CPU seconds per audio second, measured here on espeak-ng speech:
    # full 0.30, balanced 0.08-0.12, fast 0.04, fastest (every other frame) 0.025; the grammar adds 0.02
    "full": dict(fwdflat=False, bestpath=False),
    "balanced": dict(fwdflat=False, bestpath=False, beam=1e-40, wbeam=1e-30, pbeam=1e-40, maxhmmpf=3000, topn=2),
    "fast": dict(fwdflat=False, bestpath=False, beam=1e-30, wbeam=1e-20, pbeam=1e-30, maxhmmpf=1500, maxwpf=5, topn=2),
    "fastest": dict(fwdflat=False, bestpath=False, beam=1e-30, wbeam=1e-20, pbeam=1e-30, maxhmmpf=1500, maxwpf=5, topn=2, ds=2),
}
_cmn: dict[str, str] = {}
"""device id -> its cepstral mean after its last utterance; "" -> the latest of any device."""
_cmn_lock = threading.Lock()
PRESET_THRESHOLDS = {
    # (min coverage, min margin) calibrated on espeak-ng commands and questions per preset; a pruned
    # LM search leaves more frames unexplained, so its coverage says little and the margin decides.
    "full": (0.5, 8.0),
    "balanced": (0.5, 11.0),
    "fast": (0.3, 8.0),  # coverage recalibrated on the speech corpus' tune voices (data/speech)
    "fastest": (0.0, 12.0),
}
_full_lm = None
_full_lock = threading.Lock()


def _redecode(pcm: bytes) -> str:
    """Decode ``pcm`` with the full-beam general LM (one decoder per process, used in turn)."""
    global _full_lm
    with _full_lock:
        if _full_lm is None:
            _full_lm = _decoder(**LM_PRESETS["full"])
        _full_lm.start_utt()
        _full_lm.process_raw(pcm, False, True)
        _full_lm.end_utt()
        hyp = _full_lm.hyp()
        return hyp.hypstr if hyp is not None else ""  # bytes of PCM between partial transcripts (0.5 s)


def _decoder(**kw):
    from pocketsphinx import Config, Decoder

    try:
        return Decoder(Config(loglevel="FATAL", **kw))
    except Exception as exc:  # RuntimeError / ValueError from the Cython layer
        raise ModelError(f"pocketsphinx decoder cannot start: {exc}") from exc


def _words(d) -> tuple[str, float, int]:
    hyp = d.hyp()
    if hyp is None:
        return "", float("-inf"), 0
    covered = sum(
        s.end_frame - s.start_frame + 1
        for s in d.seg()
        if s.word and not s.word.startswith(("<", "[")) and s.word != "</s>"
    )
    score = math.log(hyp.score) if hyp.score > 0 else float("-inf")
    return hyp.hypstr, score, covered


class PocketsphinxEngine(SttEngine):
    """One replica: a grammar decoder and (optionally) a general-LM decoder."""

    name = "pocketsphinx"

    def __init__(
        self,
        *,
        people=(),
        teams=(),
        directory=(),
        prompt: str = "",
        general_lm: bool = True,
        min_coverage: float | None = None,
        min_margin: float | None = None,
        lm_preset: str = "fast",
        redecode: bool = False,
        lm_mode: str = "lazy",
        accept_score: float = -42.0,
        start_score: float = -48.0,
        reject_score: float = -70.0,
        accept_margin: float = 19.0,
        accept_coverage: float = 0.6,
        accept_backed: float = 1.0,
        question_margin: float = 15.0,
        context=None,
        grammar_decoder: dict | None = None,
    ) -> None:
        # no n-gram model: a grammar search only; ``grammar_decoder``: more pocketsphinx parameters
        self.grammar = _decoder(bestpath=False, lm=None, **(grammar_decoder or {}))
        self._vocabulary = dict(people=list(people), teams=list(teams), directory=list(directory), prompt=prompt)
        self.context_path = None if isinstance(context, Context) else Path(context or DEFAULT_CONTEXT)
        self._context_version = file_version(self.context_path) if self.context_path else None
        self._checked = time.monotonic()
        self.jsgf = self._load_grammar(context)
        # Single-pass LM search: the second (fwdflat) pass and the lattice best path would re-decode
        # the whole utterance after it ends, which is exactly the latency we cannot afford. The
        # streaming LM pass is pruned hard (its job is to tell commands from questions); a question's
        # text is then re-decoded with full beams by a shared decoder (``redecode``).
        self.lm = _decoder(**LM_PRESETS[lm_preset]) if general_lm else None
        self.redecode = redecode and general_lm
        self.lazy = general_lm and lm_mode == "lazy"
        self.accept_score = accept_score
        self.start_score = start_score
        self.reject_score = reject_score
        self.lm_runs = 0
        self.reloads = 0
        """Utterances the LM decoded (lazy mode counts how often the grammar was not enough)."""
        # Live CMN adapts the cepstral mean across utterances. A replica serves every device in turn,
        # so the mean is kept per device (any replica of this process picks it up); a new device
        # starts from the site's latest mean (same watches, same rooms), else the model's.
        self.cmn0 = self.grammar.get_cmn(False)
        cov, margin = PRESET_THRESHOLDS[lm_preset]
        self.min_coverage = cov if min_coverage is None else min_coverage
        self.min_margin = margin if min_margin is None else min_margin
        self.policy = RejectionPolicy(
            reject_score=reject_score, min_margin=self.min_margin, min_coverage=self.min_coverage,
            question_margin=question_margin, accept_score=accept_score, accept_margin=accept_margin,
            accept_coverage=accept_coverage,
            accept_backed=accept_backed,
        )

    @classmethod
    def from_settings(cls, voice, context=None) -> PocketsphinxEngine:
        """``context``: the tenant's command context (a Context or a path; default the industrial one)."""
        return cls(
            context=context if context is not None else voice.context,
            people=voice.people,
            teams=voice.teams,
            directory=list(voice.actions.directory),
            prompt=voice.initial_prompt,
            general_lm=voice.stt.general_lm,
            min_coverage=voice.stt.grammar_min_coverage,
            min_margin=voice.stt.grammar_min_margin,
            lm_preset=voice.stt.lm_preset,
            redecode=voice.stt.redecode_questions,
            lm_mode=voice.stt.lm_mode,
            accept_score=voice.stt.grammar_accept_score,
            start_score=voice.stt.lm_start_score,
            reject_score=voice.stt.grammar_reject_score,
            accept_margin=voice.stt.grammar_accept_margin,
            accept_coverage=voice.stt.grammar_accept_coverage,
            accept_backed=voice.stt.grammar_accept_backed,
            question_margin=voice.stt.question_margin,
            grammar_decoder=dict(voice.stt.grammar_decoder),
        )

    def _load_grammar(self, context) -> str:
        jsgf = command_grammar(**self._vocabulary, context=context,
                               known=lambda w: self.grammar.lookup_word(w) is not None)
        try:
            self.grammar.add_jsgf_string("commands", jsgf)
            self.grammar.activate_search("commands")
        except Exception as exc:
            raise ModelError(f"command grammar refused by pocketsphinx: {exc}") from exc
        return jsgf

    def reload_if_changed(self) -> bool:
        """Between utterances: when the context file changed, compile its grammar and swap it in; a bad
        file keeps the old grammar and logs one line (once per file version). True when swapped."""
        if self.context_path is None or time.monotonic() - self._checked < 0.5:
            return False
        self._checked = time.monotonic()
        version = file_version(self.context_path)
        if version is None or version == self._context_version:
            return False
        self._context_version = version
        try:
            self.jsgf = self._load_grammar(self.context_path)
        except HotpathError as exc:
            log.warning("command grammar of %s not reloaded, keeping the old one: %s", self.context_path, exc.one_line())
            return False
        self.reloads += 1
        return True

    def open(self, hints: SttHints) -> SttStream:
        self.reload_if_changed()  # a replica is between utterances here
        return _Stream(self, hints)


def _per_frame(d) -> float:
    """The decoder's current best-path log score per frame (x1e4); -inf with no hypothesis yet."""
    hyp = d.hyp()
    if hyp is None or hyp.score <= 0:
        return float("-inf")
    return math.log(hyp.score) / max(1, d.n_frames()) * 1e4


class _Stream(SttStream):
    def __init__(self, engine: PocketsphinxEngine, hints: SttHints) -> None:
        self.e = engine
        self.device = hints.device_id
        with _cmn_lock:
            self.cmn = _cmn.get(self.device) or _cmn.get("", engine.cmn0)
        # the decoders fed while audio streams: the LM joins later (or never) in lazy mode
        self.decoders = [engine.grammar] if engine.lazy or engine.lm is None else [engine.grammar, engine.lm]
        for d in self.decoders:
            d.set_cmn(self.cmn)
            d.start_utt()
        if engine.lm is not None and not engine.lazy:
            engine.lm_runs += 1
        self.bytes = 0
        self.audio: list[bytes] | None = [] if (engine.redecode or engine.lazy) else None
        self._since_partial = 0
        self._open = True

    def _start_lm(self) -> None:
        """Lazy mode: bring the LM in, caught up on the audio so far; it streams from here on."""
        lm = self.e.lm
        lm.set_cmn(self.cmn)
        lm.start_utt()
        self.decoders.append(lm)
        self.e.lm_runs += 1
        if self.audio:
            lm.process_raw(b"".join(self.audio), False, False)

    def accept(self, pcm: bytes) -> str | None:
        for d in self.decoders:
            d.process_raw(pcm, False, False)
        self.bytes += len(pcm)
        if self.audio is not None:
            self.audio.append(pcm)
        self._since_partial += len(pcm)
        if self._since_partial >= _PARTIAL_EVERY:
            self._since_partial = 0
            g = self.e.grammar
            if (self.e.lazy and len(self.decoders) == 1 and g.n_frames() >= _LAZY_MIN_FRAMES
                    and _per_frame(g) < self.e.start_score):
                self._start_lm()
            hyp = self.decoders[-1].hyp()
            return hyp.hypstr if hyp is not None else None
        return None

    def finish(self) -> Transcript:
        t0 = time.perf_counter()
        for d in self.decoders:
            d.end_utt()
        self._open = False
        if self.device:
            with _cmn_lock:
                _cmn[self.device] = _cmn[""] = self.e.grammar.get_cmn(False)
                while len(_cmn) > 10_000:
                    _cmn.pop(next(iter(_cmn)))
        g_text, g_score, g_cov = _words(self.e.grammar)
        frames = max(1, self.e.grammar.n_frames())
        audio_s = self.bytes / 32000
        if self.e.lm is None:
            # no competitor to check the grammar against: a command is never more than plausible
            return Transcript(g_text, 0.6 if g_text else 0.0, "pocketsphinx", "grammar-unsure" if g_text else "rejected",
                              audio_s, (time.perf_counter() - t0) * 1000)
        # the grammar's log score per frame its words cover (x1e4): silence before and after does not
        # dilute it, a forced fit of a question scores far lower
        g_pw = g_score / g_cov * 1e4 if g_cov and g_score > float("-inf") else float("-inf")
        lm_at = "stream"
        if self.e.lm not in self.decoders:  # lazy mode, the LM not started while streaming
            # the LM is the grammar's competitor: it always decodes the kept audio, so no command is
            # believed that the unconstrained decoder did not also hear
            self._start_lm()
            self.e.lm.end_utt()
            lm_at = "end"
        l_text, l_score, l_cov = _words(self.e.lm)
        coverage = g_cov / max(1, l_cov)
        margin = (g_score - l_score) / frames * 1e4 if g_text else float("-inf")
        f = Features(g_text, l_text, g_pw, margin, coverage, backed_share(g_text, l_text))
        verdict = judge(f, self.e.policy)
        if verdict.startswith("grammar"):
            text, source = g_text, verdict
        else:
            text, source = l_text, verdict
            if verdict == "lm" and self.audio and self.e.redecode:
                text, source = _redecode(b"".join(self.audio)) or l_text, "lm-full"
        confidence = {"grammar": 0.95, "grammar-unsure": 0.6, "rejected": 0.0}.get(verdict, 0.5)
        return Transcript(
            text, confidence if text else 0.0, "pocketsphinx", source, audio_s,
            (time.perf_counter() - t0) * 1000,
            alternatives={**f.as_dict(), "lm_at": lm_at if self.e.lazy else "parallel"},
        )

    def cancel(self) -> None:
        if self._open:
            for d in self.decoders:
                d.end_utt()
            self._open = False
