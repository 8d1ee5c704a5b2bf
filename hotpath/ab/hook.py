"""The serving path's A/B hook: three calls in the recs deployment.

    a = self.ab.assign(q.user_id, q.widget, history)        # which experiments / variants
    res = self.service.related(q, history, settings=a.settings)
    self.ab.served(res, q.user_id, q.widget, a)              # names them in the response, logs exposure

Without an experiments file (``ab.experiments_file`` unset) both calls are no-ops.
"""

from __future__ import annotations

from collections.abc import Callable

from hotpath.ab.events import ExposureBuffer
from hotpath.ab.experiments import NONE, Assignment, Experiments

__all__ = ["AbHook"]


class AbHook:
    def __init__(self, experiments: Experiments | None, exposures: ExposureBuffer | None) -> None:
        self.experiments = experiments
        self.exposures = exposures

    @classmethod
    def from_settings(cls, settings, open_event_log: Callable) -> "AbHook":
        """``open_event_log(settings)`` opens the exposure log (the caller passes the adapter factory)."""
        if settings.ab.experiments_file is None:
            return cls(None, None)
        exps = Experiments.from_settings(settings)
        return cls(exps, ExposureBuffer.from_settings(settings, open_event_log(settings)))

    def assign(self, user_id: str | None, widget: str, history: list | None = None) -> Assignment:
        """``history``: the user's (recent views, recent categories) as read for the request; a user
        with any is ``returning``."""
        if self.experiments is None:
            return NONE
        returning = bool(history) and any(history)
        return self.experiments.assign(user_id, widget, returning=returning)

    def served(self, result, user_id: str | None, widget: str, assignment: Assignment) -> None:
        if not assignment.arms or user_id is None:
            return
        result.meta["experiments"] = assignment.json_view()
        if self.exposures is not None:
            self.exposures.record(user_id, widget, assignment)

    def close(self) -> None:
        if self.exposures is not None:
            self.exposures.close()
