"""cgroup v1 readers, one module per controller (opencontainers/cgroups' ``fs/`` shape)."""
