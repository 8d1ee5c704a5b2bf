"""Local servers and the local Ray head: ``hotpath services up|down|status`` and ``hotpath up|down``.

One module per server (``redis_server``, ``mosquitto``, ``kafka``, ``cassandra``, ``ray_head``) on
the :class:`~hotpath.cluster.base.Service` base; ``manager`` holds the profiles; ``apps`` is the list
of application starters ``hotpath up`` runs after the services; ``cli`` wires the commands.
"""
