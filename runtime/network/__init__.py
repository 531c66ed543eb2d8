"""Container networking: bridge and user networks, IPAM, published ports, /etc/hosts.

Import cost matters: ``box run --network none|host`` imports nothing from here, and the
bridge start path (``endpoint``, ``ipam``, ``rtnl``) stays off pyroute2; only creating a
bridge, ``box network ...`` and the nftables calls reach for the heavier tools.
"""
