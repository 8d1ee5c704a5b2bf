"""A/B testing of recommendation variants: experiments as config, bucketing, exposure and outcome
events, the attribution join, statistics and reports. Plain synchronous code: no Ray, no network
client (the event log arrives as an :class:`~hotpath.stores.base.EventLog` object; the Amplitude
client lives in :mod:`hotpath.clients.amplitude`)."""
