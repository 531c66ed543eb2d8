"""cgroup v2 readers, one module per controller (opencontainers/cgroups' ``fs2/`` shape)."""
